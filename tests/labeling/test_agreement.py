"""Human agreement on the session page: alpha, pairwise kappa and each annotator against the
others, computed with apps.calibration.stats; a careless annotator stands out."""

from __future__ import annotations

import random

import pytest

from apps.calibration import stats
from apps.labeling.adjudication import disagreement_page
from apps.labeling.agreement import session_agreement
from apps.labeling.models import HumanLabel, LabelSource
from tests.labeling.helpers import make_session

pytestmark = pytest.mark.django_db


def _put(session, annotator: str, values: dict[int, int], key: str = "correct"):
    signature = {"correct": "ordinal:1,2,3", "safe": "binary:0,1"}[key]
    items = list(session.pool.order_by("position").values_list("item_id", flat=True))
    HumanLabel.objects.bulk_create(
        HumanLabel(item_id=items[i], criterion_key=key, scale_signature=signature,
                   annotator=annotator, value=str(v), source=LabelSource.SCREEN,
                   session=session)
        for i, v in values.items())


def test_a_careless_annotator_stands_out(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=60)
    rng = random.Random(4)
    truth = {i: rng.choice([1, 2, 3]) for i in range(60)}
    for name in ("ann", "bob", "cat"):
        _put(session, name, {i: v if rng.random() > 0.1 else rng.choice([1, 2, 3])
                             for i, v in truth.items()})
    _put(session, "dan", {i: rng.choice([1, 2, 3]) for i in truth})
    correct = next(c for c in session_agreement(session) if c.key == "correct")
    assert correct.level == "ordinal" and correct.weighting == "quadratic"
    assert correct.n_items == 60 and correct.annotators == ["ann", "bob", "cat", "dan"]
    flagged = {a.name for a in correct.per_annotator if a.stands_out}
    assert flagged == {"dan"}
    dan = next(a for a in correct.per_annotator if a.name == "dan")
    ann = next(a for a in correct.per_annotator if a.name == "ann")
    assert dan.mean_kappa < 0.3 < 0.5 < ann.mean_kappa  # ann's mean includes her kappa with dan
    assert dan.kappa_vs_majority < 0.3 < 0.8 < ann.kappa_vs_majority
    assert dan.agreement_vs_majority < ann.agreement_vs_majority
    assert len(correct.pairs) == 6


def test_the_numbers_are_those_of_the_statistics_module(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=5)
    _put(session, "ann", {0: 1, 1: 2, 2: 3, 3: 3, 4: 1})
    _put(session, "bob", {0: 1, 1: 3, 2: 3, 3: 2})
    correct = next(c for c in session_agreement(session) if c.key == "correct")
    matrix = [[1, 1], [2, 3], [3, 3], [3, 2]]
    assert correct.alpha == pytest.approx(stats.krippendorff_alpha(
        matrix, level="ordinal", value_domain=[1, 2, 3]))
    expected = stats.cohen_kappa([1, 2, 3, 3], [1, 3, 3, 2], labels=[1, 2, 3],
                                 weights="quadratic")
    assert correct.pairs[0].kappa == pytest.approx(expected) and correct.pairs[0].n == 4
    assert next(a for a in correct.per_annotator if a.name == "ann").n_items == 5
    safe = next(c for c in session_agreement(session) if c.key == "safe")
    assert safe.n_items == 0 and safe.alpha is None


def test_disagreements_list_items_whose_labels_differ(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=3)
    _put(session, "ann", {0: 1, 1: 2, 2: 3})
    _put(session, "bob", {0: 1, 1: 3})
    _put(session, "ann", {0: 0, 1: 1}, key="safe")
    _put(session, "bob", {0: 1, 1: 1}, key="safe")
    found = [(row.criterion["key"], [label.value for label in row.labels])
             for row in disagreement_page(session)["rows"]]
    # Item order, and within an item the rubric's order of criteria (correct before safe).
    assert found == [("safe", ["0", "1"]), ("correct", ["2", "3"])]
