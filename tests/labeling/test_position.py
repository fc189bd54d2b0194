"""Human position bias: from the side each annotator saw (recorded per label), how often they
pick the left response, overall and in each order, with a binomial test; shown on the session
page and beside the judge's in the calibration report and dashboard."""

from __future__ import annotations

import pytest
from django.urls import reverse
from scipy.stats import binomtest

from apps.calibration.report import calibration_report
from apps.judging.models import JudgeRun, RunKind, RunStatus, Verdict
from apps.labeling.exports import session_labels
from apps.labeling.models import HumanLabel, LabelSource
from apps.labeling.position import human_position_bias
from apps.labeling.selectors import session_criteria
from tests.labeling.helpers import label_one, make_session, url

pytestmark = pytest.mark.django_db

SIGNATURE = "pairwise:A,B,tie"


def _answers(session, annotator: str, pattern):
    """pattern(i) -> (shown order, value in item terms), one label per pool item."""
    items = list(session.pool.order_by("position").values_list("item_id", flat=True))
    rows = []
    for i, item_id in enumerate(items):
        order, value = pattern(i)
        rows.append(HumanLabel(item_id=item_id, criterion_key="overall", scale_signature=SIGNATURE,
                               annotator=annotator, value=value, source=LabelSource.SCREEN,
                               session=session, shown_order=order))
    HumanLabel.objects.bulk_create(rows)


@pytest.fixture
def pairs(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=40,
                           pairwise=True)
    # lefty always picks the left side; fond_of_a always picks A, wherever it is.
    _answers(session, "lefty", lambda i: ("AB", "A") if i % 2 else ("BA", "B"))
    _answers(session, "fond_of_a", lambda i: ("AB" if i % 2 else "BA", "A"))
    _answers(session, "tied", lambda i: ("AB", "tie") if i < 35 else ("BA", "B"))
    HumanLabel.objects.create(item=session.dataset.items.first(), criterion_key="overall",
                              scale_signature=SIGNATURE, annotator="imported", value="A",
                              source=LabelSource.IMPORT)  # no recorded side: not counted
    return session


def test_left_wins_per_annotator_and_per_order(pairs):
    figures = human_position_bias(session_labels(pairs), session_criteria(pairs))["overall"]
    lefty, fond, tied = (figures["annotators"][n] for n in ("lefty", "fond_of_a", "tied"))
    assert "imported" not in figures["annotators"]
    assert (lefty["first_shown_wins"], lefty["first_shown_wins_ab"],
            lefty["first_shown_wins_ba"]) == (1.0, 1.0, 1.0)
    assert lefty["p_value"] == pytest.approx(binomtest(40, 40, 0.5).pvalue, abs=1e-6)
    assert "more often than chance" in lefty["sentence"]
    # A real preference for A: high with A on the left, low with B there, 50 % overall.
    assert (fond["first_shown_wins"], fond["first_shown_wins_ab"],
            fond["first_shown_wins_ba"]) == (0.5, 1.0, 0.0)
    assert "within what chance gives" in fond["sentence"]
    # Ties are not decisive: 5 answers, too few for a sentence.
    assert (tied["answers"], tied["decisive"]) == (40, 5)
    assert "too few" in tied["sentence"]
    assert figures["all"]["decisive"] == 85


def test_a_pointwise_session_has_no_position_figures(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=2)
    label_one(session, personas.labeller)
    assert human_position_bias(session_labels(session), session_criteria(session)) == {}
    page = personas.client("owner").get(url("session_detail", session)).content.decode()
    assert "Position bias of the annotators" not in page


def test_the_session_page_shows_each_annotators_left_share(personas, pairs):
    page = personas.client("owner").get(url("session_detail", pairs)).content.decode()
    assert "Position bias of the annotators" in page
    assert "<td>lefty</td><td>40 decisive of 40</td><td>100%</td>" in page


def test_the_report_puts_the_peoples_position_bias_beside_the_judges(personas, pairs):
    run = JudgeRun.objects.create(project=pairs.project, rubric_version=pairs.rubric_version,
                                  dataset=pairs.dataset, name="judge", kind=RunKind.IMPORTED,
                                  status=RunStatus.COMPLETED)
    Verdict.objects.bulk_create(Verdict(run=run, item_id=pk, criterion_key="overall", value="A",
                                        rationale="") for pk in pairs.dataset.items.values_list(
                                            "pk", flat=True))
    report = calibration_report(version=pairs.rubric_version, dataset=pairs.dataset, run=run)
    position = report["bias"]["overall"]["position"]
    assert position["available"] is False  # imported verdicts: the judge's order is unknown
    assert position["humans"]["annotators"]["lefty"]["first_shown_wins"] == 1.0
    page = personas.client("owner").get(reverse(
        "calibration_dashboard", args=["acme", pairs.rubric_version.rubric.slug]),
        {"dataset": pairs.dataset.pk, "judge": run.pk}).content.decode()
    assert "the people's own position bias" in page
    assert "<th scope=\"row\">lefty</th><td>40 decisive of 40</td><td>100%</td>" in page
