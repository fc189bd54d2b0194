"""The report's rules on small, hand-made data: the reference (gold, else majority), scale
signatures, the gate and its reasons, the aggregate reward."""

from __future__ import annotations

import pytest

from apps.calibration.report import Thresholds, calibration_report
from apps.judging.models import JudgeRun, RunKind, RunStatus, Verdict
from apps.labeling.models import GoldLabel, HumanLabel, LabelSource
from apps.rubrics import content as content_mod
from apps.rubrics import scales
from apps.rubrics.services import rubric_import
from tests.factories import DatasetFactory, ItemFactory

pytestmark = pytest.mark.django_db

SPEC = {
    "rubric": "r", "name": "R", "mode": "pointwise",
    "criteria": [
        {"key": "level", "weight": 1, "scale": {"type": "ordinal", "levels": [
            {"value": i, "anchor": f"l{i}"} for i in (1, 2, 3)]}},
        {"key": "ok", "weight": 1, "scale": {"type": "binary", "levels": [
            {"value": 0, "anchor": "no"}, {"value": 1, "anchor": "yes"}]}},
        {"key": "note", "weight": 0, "scale": {"type": "categorical", "levels": [
            {"value": "x", "anchor": "x"}, {"value": "y", "anchor": "y"}]}},
    ],
}
LOW_BAR = Thresholds(min_n=3, min_kappa_lower=-1.0, min_kappa=0.5, min_human_alpha=0.0)


@pytest.fixture
def world(personas):
    _, version, _ = rubric_import(project=personas.project, content=content_mod.validate(SPEC),
                                  publish=True, note="v1")
    dataset = DatasetFactory(project=personas.project, name="d", item_count=6)
    items = [ItemFactory(dataset=dataset, position=i, external_id=f"i{i}") for i in range(6)]
    run = JudgeRun.objects.create(project=personas.project, rubric_version=version,
                                  dataset=dataset, name="judge", kind=RunKind.IMPORTED,
                                  status=RunStatus.COMPLETED)
    return version, dataset, items, run


def _label(item, key, annotator, value, scale):
    HumanLabel.objects.create(item=item, criterion_key=key, annotator=annotator,
                              value=str(value), source=LabelSource.IMPORT,
                              scale_signature=scales.scale_signature(scale))


def _scale(key):
    return next(c["scale"] for c in content_mod.validate(SPEC)["criteria"] if c["key"] == key)


def test_gold_wins_over_the_majority_and_a_tie_gives_no_reference(world):
    version, dataset, items, run = world
    scale = _scale("ok")
    for name, value in (("a", 1), ("b", 1), ("c", 0)):
        _label(items[0], "ok", name, value, scale)  # majority 1 ...
    GoldLabel.objects.create(item=items[0], criterion_key="ok", value="0",
                             scale_signature=scales.scale_signature(scale))  # ... gold says 0
    _label(items[1], "ok", "a", 1, scale)
    _label(items[1], "ok", "b", 0, scale)  # a tie: no reference
    for item in items[:2]:
        Verdict.objects.create(run=run, item=item, criterion_key="ok", value="0")
    c = calibration_report(version=version, dataset=dataset, run=run,
                           thresholds=LOW_BAR)["criteria"]["ok"]
    assert c["n_with_reference"] == 1
    assert c["n"] == 1 and c["n_gold"] == 1
    assert c["agreement"] == 1.0


def test_labels_made_on_another_scale_are_not_compared(world):
    version, dataset, items, run = world
    HumanLabel.objects.create(item=items[0], criterion_key="level", annotator="a", value="2",
                              scale_signature="ordinal:1,2,3,4,5", source=LabelSource.IMPORT)
    Verdict.objects.create(run=run, item=items[0], criterion_key="level", value="2")
    c = calibration_report(version=version, dataset=dataset, run=run,
                           thresholds=LOW_BAR)["criteria"]["level"]
    assert c["n"] == 0
    assert c["gate"]["passed"] is False


def test_ordinal_kappa_is_quadratic_weighted_and_reports_the_others(world):
    version, dataset, items, run = world
    scale = _scale("level")
    human = [1, 2, 3, 1, 2, 3]
    judge = [1, 3, 3, 1, 2, 2]
    for item, h, j in zip(items, human, judge, strict=True):
        _label(item, "level", "a", h, scale)
        Verdict.objects.create(run=run, item=item, criterion_key="level", value=str(j))
    c = calibration_report(version=version, dataset=dataset, run=run,
                           thresholds=LOW_BAR)["criteria"]["level"]
    from sklearn.metrics import cohen_kappa_score

    assert c["kappa_weighting"] == "quadratic"
    assert c["kappa"] == pytest.approx(cohen_kappa_score(human, judge, weights="quadratic"))
    assert c["kappa_linear"] == pytest.approx(cohen_kappa_score(human, judge, weights="linear"))
    assert c["kappa_unweighted"] == pytest.approx(cohen_kappa_score(human, judge))
    assert c["confusion_matrix"]["matrix"] == [[2, 0, 0], [0, 1, 1], [0, 1, 1]]
    assert c["kappa_ci95"][0] <= c["kappa"] <= c["kappa_ci95"][1]


def test_the_gate_lists_every_reason_and_ignores_unweighted_criteria(world):
    version, dataset, items, run = world
    thresholds = Thresholds(min_n=50, min_kappa_lower=0.4, min_kappa=0.6, min_human_alpha=0.4)
    scale = _scale("ok")
    for i, item in enumerate(items):
        _label(item, "ok", "a", i % 2, scale)
        Verdict.objects.create(run=run, item=item, criterion_key="ok", value=str(i % 2))
    report = calibration_report(version=version, dataset=dataset, run=run, thresholds=thresholds)
    ok = report["criteria"]["ok"]
    assert ok["kappa"] == 1.0
    assert ok["gate"]["reasons"] == ["n = 6 is below 50"]
    assert any(w.startswith("Small sample: n = 6") for w in ok["warnings"])
    assert report["criteria"]["note"]["gate"]["applies"] is False
    assert "level: n = 0 is below 50" in report["gate"]["reasons"]
    assert not any(r.startswith("note:") for r in report["gate"]["reasons"])
    assert report["gate"]["passed"] is False


def test_a_judge_that_agrees_on_enough_items_passes(world):
    version, dataset, items, run = world
    thresholds = Thresholds(min_n=6, min_kappa_lower=0.4, min_kappa=0.6, min_human_alpha=0.4)
    for key in ("level", "ok"):
        scale = _scale(key)
        values = scales.allowed_values(scale)
        for i, item in enumerate(items):
            v = values[i % len(values)]
            for annotator in ("a", "b"):
                _label(item, key, annotator, v, scale)
            Verdict.objects.create(run=run, item=item, criterion_key=key, value=str(v))
    report = calibration_report(version=version, dataset=dataset, run=run, thresholds=thresholds)
    assert report["gate"] == {"passed": True, "reasons": []}
    agg = report["aggregate"]
    assert agg["n"] == 6 and agg["spearman"] == pytest.approx(1.0)
    assert agg["pass_agreement"] == 1.0


EXACT = {
    "rubric": "exact", "name": "Exact", "mode": "pointwise", "pass_threshold": 0.6,
    "criteria": [{"key": k, "weight": w, "scale": {"type": "ordinal", "levels": [
        {"value": i, "anchor": f"l{i}"} for i in range(1, 5)]}}
        for k, w in (("a", 0.5), ("b", 1), ("c", 1))],
}


def test_the_aggregate_reward_is_exact_so_ties_stay_ties_and_3_5_passes_at_0_6(personas):
    """Labels (4, 3, 2) with weights .5/1/1 are 3/5 (0.5999999999999999 in floats, which fails
    a 0.6 threshold); (2, 2, 4) is 3/5 too, and the two must rank as a tie."""
    _, version, _ = rubric_import(project=personas.project, content=content_mod.validate(EXACT),
                                  publish=True, note="v1")
    dataset = DatasetFactory(project=personas.project, name="exact", item_count=4)
    items = [ItemFactory(dataset=dataset, position=i, external_id=f"e{i}") for i in range(4)]
    run = JudgeRun.objects.create(project=personas.project, rubric_version=version,
                                  dataset=dataset, name="judge", kind=RunKind.IMPORTED,
                                  status=RunStatus.COMPLETED)
    human = [(4, 3, 2), (2, 2, 4), (1, 1, 1), (4, 4, 4)]
    judge = [(2, 2, 4), (4, 3, 2), (1, 1, 1), (4, 4, 4)]
    scale = EXACT["criteria"][0]["scale"]
    for item, h, j in zip(items, human, judge, strict=True):
        for key, hv, jv in zip("abc", h, j, strict=True):
            _label(item, key, "ann", hv, scale)
            Verdict.objects.create(run=run, item=item, criterion_key=key, value=str(jv))
    agg = calibration_report(version=version, dataset=dataset, run=run,
                             thresholds=LOW_BAR)["aggregate"]
    assert agg["n"] == 4
    assert agg["spearman"] == pytest.approx(1.0)
    assert agg["pass_confusion"] == {"human_pass_judge_pass": 3, "human_pass_judge_fail": 0,
                                     "human_fail_judge_pass": 0, "human_fail_judge_fail": 1}
    assert agg["pass_agreement"] == 1.0


def test_no_judge_is_reported_without_passing(world):
    version, dataset, items, run = world
    report = calibration_report(version=version, dataset=dataset, run=None, thresholds=LOW_BAR)
    assert report["judge"] is None
    assert report["gate"]["passed"] is False
    assert report["gate"]["reasons"][0] == "no judge chosen"


def test_a_class_the_judge_never_answers_is_warned_about(world):
    version, dataset, items, run = world
    scale = _scale("ok")
    for i, item in enumerate(items):
        _label(item, "ok", "a", i % 2, scale)  # the humans use both 0 and 1
        Verdict.objects.create(run=run, item=item, criterion_key="ok", value="1")
    ok = calibration_report(version=version, dataset=dataset, run=run,
                            thresholds=LOW_BAR)["criteria"]["ok"]
    assert ok["judge_distribution"] == {"0": 0, "1": 6}
    assert any(w.startswith("The judge never answers 0,") for w in ok["warnings"])
    # A judge that uses every class the humans use gets no such warning.
    Verdict.objects.filter(run=run, item=items[0]).update(value="0")
    ok = calibration_report(version=version, dataset=dataset, run=run,
                            thresholds=LOW_BAR)["criteria"]["ok"]
    assert not any("never answers" in w for w in ok["warnings"])


def test_every_annotator_kappa_carries_its_landis_koch_words(world):
    version, dataset, items, run = world
    scale = _scale("ok")
    for i, item in enumerate(items):
        _label(item, "ok", "same", i % 2, scale)
        _label(item, "ok", "contrary", 1 - i % 2, scale)
        Verdict.objects.create(run=run, item=item, criterion_key="ok", value=str(i % 2))
    vs = calibration_report(version=version, dataset=dataset, run=run,
                            thresholds=LOW_BAR)["criteria"]["ok"]["kappa_vs_annotators"]
    assert vs["same"] == {"n": 6, "kappa": 1.0, "kappa_words": "almost perfect"}
    assert vs["contrary"] == {"n": 6, "kappa": -1.0, "kappa_words": "poor"}


def test_position_bias_says_how_often_the_first_shown_wins_in_each_order():
    from apps.calibration.bias import position_bias

    # (item, sample, answer asked A-first, answer asked B-first), in the item's terms.
    answers = [(1, 0, "A", "B"), (2, 0, "A", "B"), (3, 0, "A", "A"), (4, 0, "tie", "B")]
    p = position_bias(answers)
    assert p["flip_rate"] == 0.75  # items 1, 2 and 4 change with the order
    assert p["first_shown_wins_ab"] == 1.0  # A-first: A, A, A (the tie is not decisive)
    assert p["first_shown_wins_ba"] == 0.75  # B-first: B, B, A, B
    assert p["first_shown_wins"] == round(6 / 7, 6)
    assert "100% with A shown first, 75% with B shown first" in p["sentence"]
    only_ties = position_bias([(1, 0, "tie", "tie")])
    assert only_ties["first_shown_wins_ab"] is None and only_ties["first_shown_wins"] is None
    assert position_bias([])["available"] is False


@pytest.mark.parametrize("value,words", [(0.85, "almost perfect"), ("0.5", "moderate"),
                                         (-0.1, "poor"), (None, "undefined"),
                                         ("", "undefined"), ("n/a", "undefined"),
                                         (float("nan"), "undefined")])
def test_the_landis_koch_filter(value, words):
    from apps.calibration.templatetags.kappa_words import landis_koch

    assert landis_koch(value) == words
