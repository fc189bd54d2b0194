"""Statistics fixes found on hold-out data: the median reference for ordinal criteria with
drop counts per rule; "human ceiling unknown" with one label per item; kappa 0 is "slight"
everywhere; the judge's own figures over the items that have a human reference."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.template import Context, Template

from apps.calibration.data import _median
from apps.calibration.report import Thresholds, calibration_report, load_inputs
from apps.calibration.splits import split_set_reference_rule
from apps.calibration.words import band_of, kappa_sentence
from tests.calibration.worlds import make_world, ordinal_spec

pytestmark = pytest.mark.django_db
LOW = Thresholds(min_n=1000, min_kappa_lower=-1.0, min_kappa=0.0, min_human_alpha=-1.0)


def _report(world, run=None, part="all"):
    return calibration_report(version=world.version, dataset=world.dataset, run=run,
                              thresholds=LOW, part=part)


def test_the_median_is_the_lower_middle_level_so_an_annotator_chose_it():
    assert _median([1, 2, 5]) == 2
    assert _median([2, 4]) == 2  # not 3, which nobody chose
    assert _median([3]) == 3 and _median([]) is None


def test_median_rule_keeps_items_without_a_majority_and_both_drop_counts_are_reported(personas):
    world = make_world(personas.project, n=6, spec=ordinal_spec(levels=5))
    # Items 0-2 have a majority; items 3-5 have three different values (no majority).
    rows = []
    for k, values in enumerate([(2, 2, 5), (4, 4, 4), (1, 1, 3), (1, 3, 5), (2, 4, 5),
                                (1, 2, 4)]):
        rows += [(k, "quality", f"a{j}", v) for j, v in enumerate(values)]
    world.labels(rows)
    run = world.judge("j", {k: 3 for k in range(6)})
    by_majority = _report(world, run, part="dev")["criteria"]["quality"]  # not a test look
    dev = load_inputs(world.version, world.dataset, run).split.dev_ids
    assert by_majority["reference_rule"] == "majority"
    assert by_majority["n"] == len(dev & {i.pk for i in world.items[:3]})
    by_majority = calibration_report(version=world.version, dataset=world.dataset, run=run,
                                     thresholds=LOW, part="all", looks={})["criteria"]["quality"]
    assert by_majority["n"] == 3
    assert by_majority["reference_dropped"] == {"majority": 3, "median": 0}
    assert any("3 labelled items have no majority" in w and "median rule would keep 3" in w
               for w in by_majority["warnings"])
    split = load_inputs(world.version, world.dataset, run).split.split
    split_set_reference_rule(split=split, rule="median")
    by_median = _report(world, run)["criteria"]["quality"]
    assert by_median["reference_rule"] == "median" and by_median["n"] == 6
    assert by_median["reference_distribution"] == {"1": 1, "2": 2, "3": 1, "4": 2, "5": 0}
    assert by_median["reference_dropped"] == {"majority": 3, "median": 0}
    assert not any("no majority" in w for w in by_median["warnings"])


def test_the_median_rule_leaves_non_ordinal_criteria_on_the_majority(personas):
    spec = {"rubric": "b", "name": "B", "mode": "pointwise", "criteria": [
        {"key": "ok", "weight": 1, "scale": {"type": "binary", "levels": [
            {"value": 0, "anchor": "no"}, {"value": 1, "anchor": "yes"}]}}]}
    world = make_world(personas.project, n=2, spec=spec)
    world.labels([(0, "ok", "a", 0), (0, "ok", "b", 1), (1, "ok", "a", 1), (1, "ok", "b", 1)])
    run = world.judge("j", {0: 1, 1: 1})
    split = load_inputs(world.version, world.dataset, run).split.split  # drawn, no look yet
    split_set_reference_rule(split=split, rule="median")
    c = _report(world, run)["criteria"]["ok"]
    assert c["reference_rule"] == "majority" and c["n"] == 1
    assert c["reference_dropped"] == {"majority": 1, "median": None}


def test_the_rule_is_locked_after_the_first_look_at_test(personas):
    world = make_world(personas.project, n=3)
    world.labels([(k, "quality", "a", 1) for k in range(3)])
    run = world.judge("j", {k: 1 for k in range(3)})
    _report(world, run, part="test")  # a look at test results (all items: fallback)
    split = load_inputs(world.version, world.dataset, run).split.split
    with pytest.raises(ValidationError, match="locked with the split"):
        split_set_reference_rule(split=split, rule="median")
    with pytest.raises(ValidationError, match="One of majority, median"):
        split_set_reference_rule(split=split, rule="mean")


def test_several_annotators_each_on_different_items_give_an_unknown_ceiling(personas):
    world = make_world(personas.project, n=10)
    world.labels([(k, "quality", f"annotator{k % 2}", k % 3 + 1) for k in range(10)])
    run = world.judge("j", {k: k % 3 + 1 for k in range(10)})
    c = _report(world, run)["criteria"]["quality"]
    assert c["annotators"] == ["annotator0", "annotator1"]
    assert c["items_with_two_labels"] == 0
    assert c["human_alpha"] is None and c["human_pair_kappas"] == {}
    assert "every item has one label" in c["human_ceiling_unknown"]
    assert any(w.startswith("Human ceiling unknown: 2 annotators, but every item has one")
               for w in c["warnings"])


def test_two_labels_on_some_items_give_a_ceiling(personas):
    world = make_world(personas.project, n=10)
    world.labels([(k, "quality", "a", k % 3 + 1) for k in range(10)]
                 + [(k, "quality", "b", k % 3 + 1) for k in range(4)])
    c = _report(world, world.judge("j", {}))["criteria"]["quality"]
    assert c["items_with_two_labels"] == 4 and c["human_alpha"] == 1.0
    assert c["human_ceiling_unknown"] is None


def test_kappa_exactly_zero_is_slight_in_every_place_it_is_named(personas):
    spec = {"rubric": "z", "name": "Z", "mode": "pointwise", "criteria": [
        {"key": "ok", "weight": 1, "scale": {"type": "binary", "levels": [
            {"value": 0, "anchor": "no"}, {"value": 1, "anchor": "yes"}]}}]}
    world = make_world(personas.project, n=4, spec=spec)
    world.labels([(k, "ok", "a", v) for k, v in enumerate([1, 1, 0, 0])])
    run = world.judge("j", dict(enumerate([1, 0, 1, 0])))
    c = _report(world, run)["criteria"]["ok"]
    assert c["kappa"] == 0.0
    assert c["kappa_words"] == "slight"
    assert band_of(0.0) == ("slight", "exactly at chance (not worse)")
    assert "kappa = 0.00, slight (exactly at chance (not worse))" in kappa_sentence(c)
    rendered = Template("{% load kappa_words %}{{ k|landis_koch }}").render(Context({"k": 0.0}))
    assert rendered == "slight"
    assert band_of(-0.01)[0] == "poor" and band_of(0.2)[0] == "slight"


def test_judge_figures_are_taken_over_the_items_with_a_human_reference(personas):
    world = make_world(personas.project, n=40, texts=lambda k: "word " * (k + 1))
    # Humans label items 0-19 only, all level 1 or 2; the judge answers 3 on the unlabelled
    # items 20-39 (the long ones) and never on the labelled ones.
    world.labels([(k, "quality", "a", 1 if k < 10 else 2) for k in range(20)])
    values = {k: (1 if k < 10 else 2) for k in range(20)} | {k: 3 for k in range(20, 40)}
    run = world.judge("j", values)
    c = _report(world, run)["criteria"]["quality"]
    assert c["judge_distribution"] == {"1": 10, "2": 10, "3": 0}
    # On the labelled items the judge follows length exactly as the humans do.
    bias = _report(world, run)["bias"]["quality"]["length"]
    assert bias["judge_spearman"] == bias["human_spearman"]
    # It never answers 1 on the reference items of another judge: the warning says so,
    # even though it does answer 1 on unlabelled items.
    other = world.judge("k", {k: 2 for k in range(20)} | {k: 1 for k in range(20, 40)})
    warnings = _report(world, other)["criteria"]["quality"]["warnings"]
    assert any(w.startswith("The judge never answers 1,") for w in warnings)
