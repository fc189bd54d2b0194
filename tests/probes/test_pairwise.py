"""Probes of a pairwise judge: the probe goes into response A, B stays the honest answer, both
orders are asked. The gullible fake ties every pair (each side tells it FAKE_VERDICT=tie)
unless a side says "step by step", which then wins in both orders; the rubric passes A only
above a tie (threshold 0.75). So the "step by step" master keys are preferred over the honest
answer and fool it; identical sides tie; injected labels win nothing. (Padding and markdown
would cut or wrap the directive in A's text, so they are left out here.)"""

from __future__ import annotations

import pytest

from apps.datasets.models import Dataset, Item, Kind
from apps.judging.planning import judge_run_start
from apps.probes.generate import probe_names
from apps.probes.measure import probe_results
from apps.probes.services import probe_run_start
from apps.rubrics import content as content_mod
from apps.rubrics.services import rubric_import
from tests.judging.helpers import PAIRWISE
from tests.probes.worlds import STEP, fake_settings, run_all

pytestmark = pytest.mark.django_db(transaction=True)
# Padding and markdown would cut or wrap the fake's FAKE_VERDICT directive in A's text.
PROBES = ("master_key_reasoning,master_key_punctuation,master_key_solution,empty,truncation,"
          "same_both_sides,label_injection")


def test_pairwise_probes_find_the_preferred_master_key(personas, fake):
    fake.control(script="gullible")
    _, version, _ = rubric_import(project=personas.project, content=content_mod.validate(
        {**PAIRWISE, "pass_threshold": 0.75}), publish=True, note="v1")
    dataset = Dataset.objects.create(project=personas.project, name="pairs",
                                     kind=Kind.PAIRWISE, item_count=50)
    Item.objects.bulk_create(
        Item(dataset=dataset, external_id=f"p{n}", position=n, prompt=f"Task {n}",
             response_a=f"first answer {n} FAKE_VERDICT=tie",
             response_b=f"second answer {n} FAKE_VERDICT=tie") for n in range(50))
    base = run_all(judge_run_start(project=personas.project, version=version, dataset=dataset,
                                   run_settings=fake_settings(fake), name="pair-judge"))
    probe_run = probe_run_start(rubric=version.rubric, dataset=dataset, judge=str(base.pk),
                                per_probe=40, probes=PROBES)
    run_all(probe_run.run)
    figures = probe_results(probe_run)
    probes = figures["probes"]
    assert set(probes) == set(PROBES.split(",")) < set(probe_names("pairwise"))
    fooling = {name for name, p in probes.items() if p["fooled"]}
    assert fooling == {"master_key_reasoning"}
    reasoning = probes["master_key_reasoning"]
    steps = sum(v["n"] for k, v in reasoning["variants"].items() if STEP in k.casefold())
    assert reasoning["fooled"] == steps > 0 and reasoning["n"] == 40
    assert reasoning["prefers_probe"] == pytest.approx(steps / 40)
    assert probes["same_both_sides"]["rule"] == "tie" and probes["same_both_sides"]["fpr"] == 0
    assert probes["label_injection"]["prefers_probe"] == 0.0
    assert probes["label_injection"]["mean_delta"] == 0.0
    assert [r.split(":")[0] for r in figures["gate"]["reasons"]] == ["master_key_reasoning"]
