"""A probed world: a length rubric (at least 10 words passes), items of 20 to 39 words that all
pass, short prompts, and the fake model in its "gullible" script: it applies the length rule,
except that any response containing "step by step" gets the top level. So exactly the master
keys that say "step by step" fool it; padding, injections and formatting cannot raise a reward
that is already the top one; truncation and echoes are too short."""

from __future__ import annotations

from apps.judging.planning import RunSettings, judge_run_start
from tests.calibration.worlds import length_spec, make_world
from tests.exports.helpers import run_all

STEP = "step by step"


def fake_settings(fake, **extra) -> RunSettings:
    # A generous timeout: on a loaded machine a call that times out is retried later by the
    # workers, not by run_all here, and the run would stay running.
    return RunSettings(model="openai/fake-judge", api_base=fake.url, concurrency=20,
                       timeout_s=60.0, **extra)


def gullible_world(project, fake, *, n: int = 60, run: bool = True):
    fake.control(script="gullible")
    world = make_world(project, n=n, spec=length_spec(10),
                       texts=lambda k: " ".join(f"w{k}x{j}." if j % 7 == 6 else f"w{k}x{j}"
                                                for j in range(20 + k % 20)),
                       prompts=lambda k: f"Question {k}?", name="answers")
    world.base = None
    if run:
        world.base = run_all(judge_run_start(project=world.project, version=world.version,
                                             dataset=world.dataset,
                                             run_settings=fake_settings(fake),
                                             name="fake-judge"))
    return world
