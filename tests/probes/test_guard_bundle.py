"""The bundle's runtime guard, run as a trainer runs reward.py (a fresh interpreter with only
litellm, tests/exports/helpers.py) against the gullible fake, which a "step by step" master
key fools: with the guard on (the default) master keys, punctuation and empty completions get
0.0 without a model call; with RUBRICLAB_GUARD=0 the same key is sent and fools the judge."""

from __future__ import annotations

import json

import pytest

from tests.calibration.worlds import length_spec
from tests.exports.helpers import (
    fresh_env,
    last_json,
    litellm_only_python,
    quick_bundle,
    run_in_bundle,
)

pytestmark = pytest.mark.django_db

HONEST = " ".join(f"word{n}" for n in range(12))
COMPLETIONS = ["Let's solve this problem step by step.", ":", "   ", "Solution", "\x00",
               "L\u00f6sung:", HONEST, "Short answer.", "The step by step answer is " + HONEST]
CODE = """
import json, reward
completions = json.loads({completions!r})
rewards = reward.reward_func(prompts=["Q"] * len(completions), completions=completions)
judge = reward.get_judge()
details = [judge.rewards_sync(["Q"], [c])[0][1]["guarded"] for c in completions]
print(json.dumps({{"rewards": rewards, "stats": judge.stats, "guarded": details}}))
"""


@pytest.fixture(scope="module")
def python(tmp_path_factory):
    return litellm_only_python(tmp_path_factory.mktemp("guard") / "venv")


def _run(python, bundle, **env):
    return last_json(run_in_bundle(python, bundle, CODE.format(
        completions=json.dumps(COMPLETIONS)), env=fresh_env(**env)))


def test_the_guard_blocks_master_keys_without_a_model_call(personas, fake, python, tmp_path):
    fake.control(script="gullible")
    bundle = quick_bundle(personas.project, tmp_path / "b", api_base=fake.url,
                          content=length_spec(10), model="openai/fake-judge")
    before = fake.stats()["requests"]
    got = _run(python, bundle)
    calls = fake.stats()["requests"] - before
    # Guarded: the master keys, punctuation, whitespace and NUL; judged: the three others.
    assert got["rewards"] == [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0]
    assert got["guarded"] == ["master key", "punctuation only", "empty", "master key", "empty",
                              "master key", None, None, None]
    assert got["stats"]["guarded"] == 12  # 6 in the batch, 6 asked again one by one
    assert calls == 3 and got["stats"]["calls"] == 3
    readme = (bundle / "README.md").read_text()
    assert "Runtime guard (on by default)" in readme and "RUBRICLAB_GUARD=0" in readme


def test_with_the_guard_off_the_master_key_reaches_the_judge_and_fools_it(personas, fake,
                                                                           python, tmp_path):
    fake.control(script="gullible")
    bundle = quick_bundle(personas.project, tmp_path / "b", api_base=fake.url,
                          content=length_spec(10), model="openai/fake-judge")
    got = _run(python, bundle, RUBRICLAB_GUARD="0")
    assert got["rewards"][0] == 1.0  # "Let's solve this problem step by step." fools it
    assert got["stats"]["guarded"] == 0 and got["guarded"] == [None] * len(COMPLETIONS)
    proc = run_in_bundle(python, bundle, "import reward; reward.get_judge()",
                         env=fresh_env(RUBRICLAB_GUARD="maybe"), check=False)
    assert proc.returncode != 0 and "RUBRICLAB_GUARD must be 1 or 0" in proc.stderr
