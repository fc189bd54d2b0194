"""One bad answer does not void a completion (issue: rewards a trainer can trust, §2).

The same partial failures are fed to the app (a live run through the executor) and to reward.py
in a fresh interpreter: a scripted judge answers each (item, criterion) with a fixed sequence
in which some answers are garbage. Both drop the samples without a verdict, combine the rest
and weight the criteria with the one function they share (apps/judging/scoring.py), so every
item gets the identical reward, and exactly the items with a weighted criterion left without
any valid sample get none.
"""

from __future__ import annotations

import json
import random
import re
from fractions import Fraction

import pytest
from django.test import override_settings

from apps.datasets.models import Dataset, Item, Kind
from apps.exports.services import judge_export
from apps.judging.models import RunStatus
from apps.judging.planning import RunSettings, judge_run_start
from apps.rubrics import content as content_mod
from apps.rubrics.services import rubric_import
from tests.exports.helpers import (
    app_rewards,
    fresh_env,
    last_json,
    litellm_only_python,
    run_all,
    run_in_bundle,
    unzip,
)
from tests.exports.scripted import ScriptedJudge, verdict

pytestmark = pytest.mark.django_db(transaction=True)

KEYS = (("a", 0.5), ("b", 1), ("c", 1))
RUBRIC = {
    "rubric": "hanna-like", "name": "HANNA-like", "mode": "pointwise",
    "description": "Stories.",
    "criteria": [{"key": key, "weight": weight, "scale": {"type": "ordinal", "levels": [
        {"value": i, "anchor": f"{key} level {i}"} for i in range(1, 5)]}}
        for key, weight in KEYS],
}
ITEMS = 16
GARBAGE = ["I would rate it fairly good.", '{"value": 7}', '[{"value": 3}]',
           '{"value": ' + "9" * 5000 + "}", '{"value": NaN}', "", "{\"value\": [[[2]]]}"]


def answer_table(seed: int = 7) -> dict:
    """(item, criterion) -> the answers to its first three asks (K = 3); asks after those (the
    bundle's re-asks) are garbage too, so both sides see exactly these valid samples."""
    rng = random.Random(seed)
    table = {}
    for n in range(ITEMS):
        for key, _ in KEYS:
            table[(n, key)] = [rng.choice(GARBAGE) if rng.random() < 0.35
                               else verdict(rng.randint(1, 4)) for _ in range(3)]
    # Pinned cases: dropping a sample changes the combined value ((4, 1) rounds to 3, halves
    # up); a weighted criterion with no valid sample leaves the item without a reward.
    table[(0, "a")] = [verdict(4), GARBAGE[0], verdict(1)]
    table[(0, "b")] = [verdict(3)] * 3
    table[(0, "c")] = [verdict(2), verdict(2), GARBAGE[6]]
    table[(1, "b")] = [GARBAGE[1], GARBAGE[3], GARBAGE[4]]
    table[(2, "c")] = [verdict(2), GARBAGE[2], GARBAGE[5]]
    return table


def script_for(table):
    def script(text: str, n: int) -> str:
        item = int(re.search(r"ITEM-(\d+)", text).group(1))
        key = re.search(r"\(key: (\w+)\)", text).group(1)
        answers = table[(item, key)]
        return answers[n] if n < len(answers) else GARBAGE[n % len(GARBAGE)]
    return script


@pytest.fixture
def scripted():
    judge = ScriptedJudge(script_for(answer_table()), latency_s=0.05)
    yield judge
    judge.close()


# A third of the answers are garbage on purpose; the operator of this test allows that many
# failed calls, so the run counts as "completed with failures" (the default 20 % fails it).
@override_settings(JUDGE_RUN_MAX_FAILED_SHARE=0.5)
def test_the_bundle_and_the_app_give_identical_rewards_under_partial_failures(
        personas, scripted, tmp_path):
    project = personas.project
    _, version, _ = rubric_import(project=project, content=content_mod.validate(RUBRIC),
                                  publish=True, note="v1")
    dataset = Dataset.objects.create(project=project, name="stories", kind=Kind.POINTWISE,
                                     item_count=ITEMS)
    Item.objects.bulk_create(
        Item(dataset=dataset, external_id=f"s{n}", position=n, prompt=f"Write story {n}.",
             response=f"Once upon a time. ITEM-{n}.") for n in range(ITEMS))
    # K = 3 at a temperature above 0: three real samples per criterion.
    run = run_all(judge_run_start(
        project=project, version=version, dataset=dataset,
        run_settings=RunSettings(model="openai/scripted", api_base=scripted.url,
                                 temperature=0.7, samples=3, concurrency=50, timeout_s=10.0,
                                 use_cache=False)), ends=(RunStatus.COMPLETED_WITH_FAILURES,))
    app = app_rewards(run)
    table = answer_table()
    assert 1 not in {i.position for i in dataset.items.filter(pk__in=app)}  # b never valid
    assert len(app) >= ITEMS // 2  # most items still have a reward
    invalid = sum(1 for answers in table.values() for a in answers if a in GARBAGE)
    assert run.judgments.filter(status="invalid").count() == invalid

    scripted.reset()
    export = judge_export(run=run, fmt="bundle", force=True)
    bundle = unzip(bytes(export.artifact), tmp_path / "bundle")
    items = list(dataset.items.order_by("position"))
    (bundle / "rows.json").write_text(json.dumps(
        [{"id": i.pk, "prompt": i.prompt, "completion": i.response} for i in items]))
    proc = run_in_bundle(litellm_only_python(tmp_path / "venv"), bundle, """
import json, reward
rows = json.load(open('rows.json'))
out = reward.reward_func(prompts=[r['prompt'] for r in rows],
                         completions=[r['completion'] for r in rows])
print(json.dumps({'rewards': {r['id']: x for r, x in zip(rows, out)},
                  'stats': reward.get_judge().stats}))
""", env=fresh_env(RUBRICLAB_CONCURRENCY="500"))
    got = last_json(proc)
    bundle_rewards = {int(k): v for k, v in got["rewards"].items()}
    for item in items:
        # Identical, not approximately equal: the same exact function on the same samples.
        assert bundle_rewards[item.pk] == app.get(item.pk), item.position
    # Item 0: a from (4, 1) -> 3, b 3, c 2: (0.5 * 2/3 + 2/3 + 1/3) / 2.5 = 8/15.
    assert bundle_rewards[items[0].pk] == float(Fraction(8, 15))
    stats = got["stats"]
    assert stats["reasked"] == invalid  # each unreadable answer asked again, once
    assert stats["samples_dropped"] == invalid
    assert stats["failures"] == ITEMS - len(app)
    # K = 3 asks per criterion plus one re-ask per garbage answer, nothing more.
    assert stats["calls"] == ITEMS * len(KEYS) * 3 + invalid
    assert "UNCALIBRATED" in proc.stderr.splitlines()[0]  # the status line on import
