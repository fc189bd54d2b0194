"""The report reproduces published figures from real data, imported the way a user imports it
(load_demo feeds the bundled files through the same importer as an upload)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from apps.calibration.report import calibration_report
from apps.datasets.models import Dataset
from apps.judging.models import JudgeRun

pytestmark = pytest.mark.django_db


def _report(judge: str, dataset: str = "PandaLM test set") -> dict:
    """Over all items, as the papers report them (the gate's report covers the test split)."""
    ds = Dataset.objects.get(project__slug="demo", name=dataset)
    run = JudgeRun.objects.get(dataset=ds, name=judge)
    return calibration_report(version=run.rubric_version, dataset=ds, run=run, part="all")


def test_pandalm_annotator_pair_kappas_are_the_published_ones(demo_loaded):
    c = _report("gpt-3.5-turbo")["criteria"]["overall"]
    pairs = {k: round(v, 2) for k, v in c["human_pair_kappas"].items()}
    assert pairs == {"annotator1 ~ annotator2": 0.85, "annotator1 ~ annotator3": 0.88,
                     "annotator2 ~ annotator3": 0.86}


def test_pandalm_majority_distribution_is_105_422_472(demo_loaded):
    c = _report("gpt-3.5-turbo")["criteria"]["overall"]
    assert c["reference_distribution"] == {"tie": 105, "A": 422, "B": 472}
    assert c["n"] == 999


@pytest.mark.parametrize("judge,expected", [
    ("gpt-3.5-turbo", (71.07, 58.79, 57.36, 57.55)),
    ("PandaLM-7B", (66.77, 57.38, 57.50, 57.43)),
])
def test_pandalm_judge_accuracy_and_macro_scores_are_published_ones(demo_loaded, judge, expected):
    c = _report(judge)["criteria"]["overall"]
    got = tuple(round(100 * c[k], 2) for k in
                ("accuracy", "macro_precision", "macro_recall", "macro_f1"))
    assert got == expected


def test_pandalm_human_ceiling_and_judge_kappas_match_the_exact_values(demo_loaded):
    gpt = _report("gpt-3.5-turbo")["criteria"]["overall"]
    panda = _report("PandaLM-7B")["criteria"]["overall"]
    assert round(gpt["human_fleiss_kappa"], 4) == 0.8642
    assert round(gpt["human_alpha"], 4) == 0.8642
    assert round(gpt["kappa"], 4) == 0.4958
    # The 25 unparseable answers count as tie; dropping them instead gives 0.4929.
    assert gpt["flagged_verdicts"]["count"] == 25
    assert round(gpt["flagged_verdicts"]["kappa_without_flagged"], 4) == 0.4929
    assert round(panda["kappa"], 4) == 0.4354
    assert gpt["kappa_weighting"] == "none"


def test_the_gate_refuses_gpt35_and_says_why(demo_loaded):
    report = _report("gpt-3.5-turbo")
    assert report["gate"]["passed"] is False
    assert any("kappa 0.496 is below 0.6" in r for r in report["gate"]["reasons"])
    low, high = report["criteria"]["overall"]["kappa_ci95"]
    assert low < 0.4958 < high


@pytest.mark.parametrize("criterion,icc1,icc1k", [
    ("relevance", 0.137622, 0.323755),
    ("coherence", -0.0547567, -0.184472),
    ("empathy", 0.115955, 0.282378),
    ("surprise", 0.0512276, 0.1394),
    ("engagement", 0.180231, 0.397433),
    ("complexity", 0.278044, 0.536044),
])
def test_hanna_human_icc_matches_the_authors_notebook(demo_loaded, criterion, icc1, icc1k):
    c = _report("ChatGPT (prompt 1)", "HANNA story ratings")["criteria"][criterion]
    assert round(c["human_icc1"], 5) == round(icc1, 5)
    assert round(c["human_icc1k"], 5) == round(icc1k, 5)


def test_hanna_low_human_ceiling_is_flagged_and_blocks_the_gate(demo_loaded):
    report = _report("ChatGPT (prompt 1)", "HANNA story ratings")
    coherence = report["criteria"]["coherence"]
    assert coherence["human_alpha"] < 0.4
    assert any("too low a ceiling" in w for w in coherence["warnings"])
    assert any("humans' own agreement" in r for r in coherence["gate"]["reasons"])
    assert report["gate"]["passed"] is False


def test_the_command_prints_the_contract_keys(demo_loaded):
    out = io.StringIO()
    call_command("calibration_report", "--project", "demo", "--rubric", "pandalm-preference",
                 "--dataset", "PandaLM test set", "--judge", "PandaLM-7B", "--format", "json",
                 "--part", "all", stdout=out)
    report = json.loads(out.getvalue())
    assert {"rubric", "version", "dataset", "judge", "criteria", "gate"} <= set(report)
    c = report["criteria"]["overall"]
    for key in ("n", "agreement", "kappa", "kappa_weighting", "kappa_ci95", "confusion_matrix",
                "kappa_vs_annotators", "human_alpha", "human_fleiss_kappa", "alpha_with_judge",
                "accuracy", "macro_precision", "macro_recall", "macro_f1", "flip_rate", "gate"):
        assert key in c, key
    assert set(c["confusion_matrix"]) >= {"labels", "matrix"}
    assert set(c["gate"]) >= {"passed", "reasons"}
    assert set(report["gate"]) >= {"passed", "reasons"}
    assert sum(map(sum, c["confusion_matrix"]["matrix"])) == 999


def test_hanna_keeps_every_story_with_the_median_reference(demo_loaded):
    # 413 of 1,056 stories have no majority on relevance; the demo's split uses the median.
    c = _report("ChatGPT (prompt 1)", "HANNA story ratings")["criteria"]["relevance"]
    assert c["reference_rule"] == "median"
    assert c["reference_dropped"] == {"majority": 413, "median": 0}
    assert c["n_with_reference"] == 1056
