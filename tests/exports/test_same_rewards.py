"""Same verdicts, same rewards: for a live run on the fake provider, the bundle's reward.py
gives each item exactly the reward the app computes from the run's verdicts (the calibration
report's aggregate), because it renders the same messages, parses and combines the same way.

The fake answers from a hash of the messages, so any difference in the prompt the bundle sends
shows up as another verdict, and so as another reward.
"""

from __future__ import annotations

import json

import pytest

from apps.exports.services import judge_export
from tests.exports.helpers import (
    app_rewards,
    hashed_pairwise,
    hashed_pointwise,
    last_json,
    litellm_only_python,
    run_in_bundle,
    unzip,
)

pytestmark = pytest.mark.django_db(transaction=True)


def bundle_rewards(tmp_path, run, items, *, pairwise: bool) -> dict:
    export = judge_export(run=run, fmt="bundle", force=True)
    bundle = unzip(bytes(export.artifact), tmp_path / "bundle")
    python = litellm_only_python(tmp_path / "venv")
    rows = [{"id": i.pk, "prompt": i.prompt,
             "completion": i.response_a if pairwise else i.response,
             "reference": i.response_b if pairwise else i.reference} for i in items]
    (bundle / "rows.json").write_text(json.dumps(rows))
    proc = run_in_bundle(python, bundle, """
import json, reward
rows = json.load(open('rows.json'))
out = reward.reward_func(prompts=[r['prompt'] for r in rows],
                         completions=[r['completion'] for r in rows],
                         reference=[r['reference'] for r in rows])
print(json.dumps({'rewards': dict(zip([r['id'] for r in rows], out)),
                  'stats': reward.get_judge().stats}))
""")
    return last_json(proc)


def test_pointwise_weighted_rewards_equal_the_apps(tmp_path, personas, fake):
    run = hashed_pointwise(personas.project, fake, items=12)
    expected = app_rewards(run)
    assert len(expected) == 12 and len(set(expected.values())) > 2  # not a constant judge
    items = list(run.dataset.items.order_by("position"))
    got = bundle_rewards(tmp_path, run, items, pairwise=False)
    assert {int(k): v for k, v in got["rewards"].items()} == pytest.approx(expected)
    assert got["stats"]["failures"] == 0


def test_pairwise_rewards_against_a_reference_equal_the_apps(tmp_path, personas, fake):
    run = hashed_pairwise(personas.project, fake, items=12)
    expected = app_rewards(run)
    assert len(expected) == 12 and len(set(expected.values())) > 1
    items = list(run.dataset.items.order_by("position"))
    got = bundle_rewards(tmp_path, run, items, pairwise=True)
    assert {int(k): v for k, v in got["rewards"].items()} == pytest.approx(expected)
    assert got["stats"]["failures"] == 0
