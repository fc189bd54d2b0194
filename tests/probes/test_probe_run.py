"""A probe run, executed: the judge under test (the gullible fake, through the real litellm
client) on the generated items, batches run in this process; the figures find exactly the
probes that fool it, failed calls are counted as failed, and the gate refuses."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from apps.calibration.overview import rubric_state
from apps.calibration.report import Thresholds
from apps.datasets.models import Dataset, Purpose
from apps.judging.models import JudgeConfig, RunStatus
from apps.probes.generate import probe_names
from apps.probes.measure import probe_results
from apps.probes.models import ProbeItem
from apps.probes.services import probe_run_start
from tests.probes.worlds import STEP, gullible_world, run_all

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(personas, fake):
    return gullible_world(personas.project, fake)


def _probe(world, ends=(RunStatus.COMPLETED,), **kwargs):
    probe_run = probe_run_start(rubric=world.version.rubric, dataset=world.dataset,
                                judge=kwargs.pop("judge", str(world.base.pk)), **kwargs)
    run_all(probe_run.run, ends=ends)
    return probe_run


def test_the_report_finds_exactly_the_probes_that_fool_the_judge(world):
    probe_run = _probe(world)
    assert probe_run.run.status == RunStatus.COMPLETED
    figures = probe_results(probe_run)
    probes = figures["probes"]
    assert set(probes) == set(probe_names("pointwise"))
    fooling = {name for name, p in probes.items() if p["fooled"]}
    assert fooling == {"master_key_reasoning"}
    reasoning = probes["master_key_reasoning"]
    step_items = sum(v["n"] for k, v in reasoning["variants"].items() if STEP in k.casefold())
    assert reasoning["fooled"] == step_items > 0
    assert reasoning["n"] == 50 and reasoning["failed"] == 0
    assert reasoning["fpr"] == pytest.approx(step_items / 50)
    low, high = reasoning["fpr_ci95"]
    assert low < reasoning["fpr"] < high
    assert all(STEP in e["text"].casefold() and e["reward"] == 1.0 and "step by step"
               in e["rationale"] for e in reasoning["examples"])
    # No reference in this dataset: the copy probe has nothing to copy.
    assert probes["reference_copy"]["n"] == 0
    # Padding cannot raise a top reward: the change is exactly 0, and the share at least as
    # high as the original is 1.
    assert probes["padding_4x"]["mean_delta"] == 0.0
    assert probes["padding_4x"]["at_least_original"] == 1.0
    assert probes["truncation"]["fpr"] == 0.0
    gate = figures["gate"]
    assert gate["passed"] is False
    assert len(gate["reasons"]) == 1 and gate["reasons"][0].startswith("master_key_reasoning:")
    assert figures["worst_first"][0] == "master_key_reasoning"
    assert {"probe": "reference_copy", "why": "copy: reported, not gated"} in gate["not_gated"]


def test_a_probe_accepted_as_out_of_scope_is_shown_but_not_gated(world):
    probe_run = _probe(world, probes="master_key_reasoning,master_key_punctuation,empty")
    project = world.project
    project.gate_probes_accepted = "master_key_reasoning"
    project.save()
    figures = probe_results(probe_run)
    assert figures["probes"]["master_key_reasoning"]["fooled"] > 0
    assert figures["gate"] == {
        "passed": True, "reasons": [], "max_fpr": 0.1,
        "gated": ["master_key_punctuation", "empty"],
        "not_gated": [{"probe": "master_key_reasoning", "why": "accepted as out of scope"}]}


def test_failed_calls_are_failed_never_passes(world, fake):
    fake.control(rate_malformed=1.0, seed=1)
    probe_run = _probe(world, probes="master_key_reasoning,padding_2x", per_probe=5,
                       seed=3, ends=(RunStatus.FAILED, RunStatus.COMPLETED_WITH_FAILURES))
    figures = probe_results(probe_run)
    for name in ("master_key_reasoning", "padding_2x"):
        p = figures["probes"][name]
        assert (p["n"], p["fooled"], p["failed"], p["fpr"]) == (0, 0, 5, None)
    # The originals' answers were paid for by the base run: the cache still has them.
    assert figures["originals"] == {"n": 5, "failed": 0}
    assert figures["gate"]["passed"] is False
    assert any("no probed item has a reward (5 failed" in r for r in figures["gate"]["reasons"])


def test_the_probed_items_record_their_probe_and_original_and_stay_hidden(world, personas):
    probe_run = _probe(world, probes="prompt_echo", per_probe=7, seed=9)
    rows = list(ProbeItem.objects.filter(probe_run=probe_run).select_related("item",
                                                                             "original"))
    echoes = [r for r in rows if r.probe == "prompt_echo"]
    assert len(echoes) == 7 and len([r for r in rows if r.probe == "original"]) == 7
    for row in echoes:
        assert row.item.response == row.original.prompt
        assert row.original.dataset_id == world.dataset.pk
    assert probe_run.probe_dataset.purpose == Purpose.PROBES
    assert not Dataset.objects.filter(pk=probe_run.probe_dataset_id).exists()
    assert list(Dataset.objects.filter(project=world.project)) == [world.dataset]
    # The project overview still points at the dataset to label, not at the probe items; the
    # probe run's item links work.
    state = rubric_state(world.version.rubric, thresholds=Thresholds.for_project(world.project),
                         user=None, exports={})
    assert state.dataset == world.dataset
    item = echoes[0].item
    page = personas.client("editor").get(
        reverse("item_detail", args=["acme", item.dataset_id, item.pk]))
    assert page.status_code == 200
    # The originals were judged by the base run already: they come from the call cache.
    assert probe_run.run.judgments.filter(item__probe_item__probe="original",
                                          cached=True).count() == 7


def test_a_judge_by_config_name_and_the_refusals(world, fake):
    JudgeConfig.objects.create(project=world.project, rubric_version=world.version,
                               name="cfg-judge", model="openai/fake-judge", api_base=fake.url,
                               concurrency=5, timeout_s=10)
    probe_run = _probe(world, judge="cfg-judge", probes="empty", per_probe=3)
    assert probe_run.base_run is None and probe_run.run.model == "openai/fake-judge"
    assert (probe_run.run.name, probe_run.run.concurrency) == ("cfg-judge (probes)", 5)
    assert probe_results(probe_run)["probes"]["empty"]["n"] == 3
    by_name = _probe(world, judge="fake-judge", probes="empty", per_probe=3)
    assert by_name.base_run == world.base
    with pytest.raises(ValidationError, match="No judge 'nobody'.*judges: fake-judge"):
        probe_run_start(rubric=world.version.rubric, dataset=world.dataset, judge="nobody")
    with pytest.raises(ValidationError, match="unknown probe"):
        probe_run_start(rubric=world.version.rubric, dataset=world.dataset,
                        judge="fake-judge", probes="bogus")
    with pytest.raises(ValidationError, match="per-probe"):
        probe_run_start(rubric=world.version.rubric, dataset=world.dataset,
                        judge="fake-judge", per_probe=0)
    imported = world.judge("people-model", {0: 1, 1: 0}, key="long")
    with pytest.raises(ValidationError, match="imported verdicts"):
        probe_run_start(rubric=world.version.rubric, dataset=world.dataset,
                        judge=str(imported.pk))
    before = Dataset.all_objects.count()
    project = world.project
    project.max_queued_calls = 3
    project.save()
    with pytest.raises(ValidationError, match="cap"):
        probe_run_start(rubric=world.version.rubric, dataset=world.dataset,
                        judge="fake-judge")
    assert Dataset.all_objects.count() == before  # nothing half-made


def test_deleting_the_source_dataset_leaves_no_hidden_probe_data(world):
    from apps.judging.models import JudgeRun

    probe_run = probe_run_start(rubric=world.version.rubric, dataset=world.dataset,
                                judge=str(world.base.pk), probes=["empty"], per_probe=5)
    hidden, run = probe_run.probe_dataset_id, probe_run.run_id
    assert Dataset.all_objects.filter(pk=hidden, purpose=Purpose.PROBES).exists()
    world.dataset.delete()
    assert not Dataset.all_objects.filter(pk=hidden).exists()
    assert not JudgeRun.objects.filter(pk=run).exists()
    assert not ProbeItem.objects.filter(probe_run_id=probe_run.pk).exists()
