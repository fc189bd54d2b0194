"""Rounds: an annotator who is given items they labelled before stores a new round beside the
earlier one (docs/decisions/0009-label-rounds.md). Progress counts what the session stored,
the export holds it, calibration uses each annotator's latest round and says so, and the
earlier rounds give test-retest (intra-rater) kappa, equal to scikit-learn's."""

from __future__ import annotations

import io
import json

import pytest
from sklearn.metrics import cohen_kappa_score

from apps.calibration.report import calibration_report
from apps.intake.services import dataset_file_import
from apps.judging.models import JudgeRun, RunKind, RunStatus, Verdict
from apps.labeling import services
from apps.labeling.agreement import session_agreement
from apps.labeling.claims import label_claim_next
from apps.labeling.models import HumanLabel, LabelSource
from apps.labeling.selection import select_item_ids
from apps.labeling.selectors import repeat_counts, sessions_progress
from tests.labeling.helpers import HTMX, label_one, make_session, url

pytestmark = pytest.mark.django_db

VALUES = [{"correct": 1 + i % 3, "safe": i % 2} for i in range(8)]


def _label_all(session, user, values_list):
    for values in values_list:
        label_one(session, user, values)


def _second_session(first, personas, name="retest"):
    return services.session_create(
        project=personas.project, version=first.rubric_version, dataset=first.dataset,
        name=name, overlap=1, assignees=[personas.labeller], selection={"mode": "all"})


def test_a_second_session_over_labelled_items_stores_a_new_round_and_counts_it(personas):
    """The seen bug: 8 labelled items sent again showed "Already saved" on every submit and
    "8 of 8 (100 %)" with an empty export. Now each answer is stored as round 2."""
    first = make_session(personas.project, assignees=[personas.labeller], items=8)
    _label_all(first, personas.labeller, VALUES)
    second = _second_session(first, personas)
    assert repeat_counts(second) == [("labeller", 8)]

    client = personas.client("labeller")
    screen = url("label_screen", second)
    for _ in range(8):
        page = client.get(screen).content.decode()
        assignment = page.split('name="assignment" value="')[1].split('"')[0]
        answer = client.post(screen, {"assignment": assignment, "c_correct": "3",
                                      "c_safe": "1"}, **HTMX).content.decode()
        assert "Saved: Correct = 3 (Right)" in answer and "Round 2" in answer, answer[:3000]
        assert "Already saved" not in answer

    stored = HumanLabel.objects.filter(session=second)
    assert stored.count() == 16 and set(stored.values_list("round", flat=True)) == {2}
    # The first session's labels are untouched.
    assert set(HumanLabel.objects.filter(session=first).values_list("round", flat=True)) == {1}
    progress = sessions_progress([second])[0]
    assert (progress.done, progress.labels_needed) == (8, 8)
    rows = [json.loads(line) for line in b"".join(personas.client("owner").get(
        url("session_export", second)).streaming_content).decode().splitlines()]
    assert len(rows) == 8
    assert {label["round"] for row in rows for label in row["labels"]} == {2}
    assert {label["value"] for row in rows for label in row["labels"]
            if label["criterion"] == "correct"} == {3}


def test_an_imported_label_under_the_same_name_is_round_one_and_the_screen_answer_round_two(
        personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=1)
    claim = label_claim_next(session=session, user=personas.labeller)
    HumanLabel.objects.create(item_id=claim.session_item.item_id, criterion_key="correct",
                              scale_signature="ordinal:1,2,3", annotator="labeller", value="1",
                              source=LabelSource.IMPORT)
    result = services.label_submit(session=session, user=personas.labeller,
                                   assignment_id=claim.pk, values={"correct": 3, "safe": 1})
    assert result.outcome == services.SAVED and result.round == 2
    assert result.values == {"correct": "3", "safe": "1"}
    rows = sorted(HumanLabel.objects.filter(item_id=claim.session_item.item_id).values_list(
        "criterion_key", "round", "value", "source"))
    assert rows == [("correct", 1, "1", "import"), ("correct", 2, "3", "screen"),
                    ("safe", 2, "1", "screen")]
    again = services.label_submit(session=session, user=personas.labeller,
                                  assignment_id=claim.pk, values={"correct": 1, "safe": 0})
    assert again.outcome == services.ALREADY_SAVED  # a double submit of this session's claim
    assert again.values == {"correct": "3", "safe": "1"}


def test_a_round_is_never_refilled_so_the_highest_round_is_the_newest_answer(personas):
    first = make_session(personas.project, assignees=[personas.labeller], items=1)
    label_one(first, personas.labeller, {"correct": 1, "safe": 0})
    second = _second_session(first, personas)
    label_one(second, personas.labeller, {"correct": 2, "safe": 0})
    services.label_undo(session=first, user=personas.labeller)  # round 1 goes
    claim = label_claim_next(session=first, user=personas.labeller)
    result = services.label_submit(session=first, user=personas.labeller,
                                   assignment_id=claim.pk, values={"correct": 3, "safe": 1})
    assert result.round == 3
    assert sorted(HumanLabel.objects.filter(criterion_key="correct").values_list(
        "round", "value")) == [(2, "2"), (3, "3")]


def _judge(session, values: dict[int, int]) -> JudgeRun:
    run = JudgeRun.objects.create(project=session.project, rubric_version=session.rubric_version,
                                  dataset=session.dataset, name="judge", kind=RunKind.IMPORTED,
                                  status=RunStatus.COMPLETED)
    items = list(session.pool.order_by("position").values_list("item_id", flat=True))
    Verdict.objects.bulk_create(Verdict(run=run, item_id=items[i], criterion_key="correct",
                                        value=str(v), rationale="") for i, v in values.items())
    return run


def test_calibration_uses_the_latest_round_and_reports_intra_rater_kappa(personas):
    first = make_session(personas.project, assignees=[personas.labeller], items=8)
    _label_all(first, personas.labeller, VALUES)
    second = _second_session(first, personas)
    retest = [1, 2, 3, 1, 1, 3, 1, 3]  # some the same as round 1, some not
    _label_all(second, personas.labeller, [{"correct": v, "safe": 1} for v in retest])
    run = _judge(first, dict(enumerate(retest)))

    latest = calibration_report(version=first.rubric_version, dataset=first.dataset, run=run,
                                with_bias=False)
    assert latest["rounds"]["rule"] == "latest"
    assert latest["rounds"]["labels_left_out"] == 16  # 8 items x 2 criteria of round 1
    correct = latest["criteria"]["correct"]
    assert correct["kappa"] == 1.0 and correct["rounds_left_out"] == 8  # the judge = round 2

    earliest = calibration_report(version=first.rubric_version, dataset=first.dataset, run=run,
                                  with_bias=False, rounds="first")
    before = [v["correct"] for v in VALUES]
    expected = cohen_kappa_score(before, retest, labels=[1, 2, 3], weights="quadratic")
    assert earliest["criteria"]["correct"]["kappa"] == pytest.approx(expected, abs=1e-6)

    intra = correct["intra_rater"]["labeller"]
    assert intra["n"] == 8
    assert intra["kappa"] == pytest.approx(expected, abs=1e-6)
    assert intra["agreement"] == pytest.approx(
        sum(a == b for a, b in zip(before, retest, strict=True)) / 8)
    with pytest.raises(ValueError, match="rounds"):
        calibration_report(version=first.rubric_version, dataset=first.dataset, run=run,
                           rounds="all")


def test_the_session_page_shows_test_retest_beside_inter_rater(personas):
    first = make_session(personas.project, assignees=[personas.labeller], items=8)
    _label_all(first, personas.labeller, VALUES)
    second = _second_session(first, personas)
    retest = [2, 2, 3, 1, 1, 3, 1, 3]
    _label_all(second, personas.labeller, [{"correct": v, "safe": 0} for v in retest])
    correct = next(c for c in session_agreement(second) if c.key == "correct")
    expected = cohen_kappa_score([v["correct"] for v in VALUES], retest, labels=[1, 2, 3],
                                 weights="quadratic")
    assert correct.retest["labeller"]["kappa"] == pytest.approx(expected, abs=1e-6)
    safe = next(c for c in session_agreement(second) if c.key == "safe")
    assert safe.retest["labeller"]["n"] == 8
    # The first session has no earlier round: no test-retest there.
    assert all(not c.retest for c in session_agreement(first))
    page = personas.client("owner").get(url("session_detail", second)).content.decode()
    assert "against themselves (test-retest)" in page
    assert "Repeat round: labeller had labelled 8 of these items before" in page


def test_creating_a_repeat_session_says_who_labelled_what_before(personas):
    first = make_session(personas.project, assignees=[personas.labeller], items=3)
    _label_all(first, personas.labeller, VALUES[:2])
    response = personas.client("owner").post(url("session_create"), {
        "name": "again", "version": first.rubric_version.pk, "dataset": first.dataset.pk,
        "mode": "all", "overlap": 1, "claim_ttl_s": 900, "assignees": [personas.labeller.pk],
    }, follow=True)
    assert response.status_code == 200
    assert "labelled some of these items before (labeller 2)" in response.content.decode()


def test_choosing_disagreements_compares_the_judge_with_the_latest_round(personas):
    first = make_session(personas.project, assignees=[personas.labeller], items=2)
    _label_all(first, personas.labeller, [{"correct": 1, "safe": 0}, {"correct": 1, "safe": 0}])
    second = _second_session(first, personas)
    _label_all(second, personas.labeller, [{"correct": 3, "safe": 0},
                                           {"correct": 1, "safe": 0}])
    run = _judge(first, {0: 3, 1: 3})
    chosen = select_item_ids(dataset=first.dataset, version=first.rubric_version,
                             selection={"mode": "disagree", "run": run.pk})
    assert chosen == [first.pool.get(position=1).item_id]  # item 0 agrees with round 2


# -- rounds in files ---------------------------------------------------------------------------

def _import(personas, version, rows, name="imported"):
    body = "".join(json.dumps(row) + "\n" for row in rows).encode()
    return dataset_file_import(project=personas.project, dataset_name=name,
                               stream=io.BytesIO(body), fmt="jsonl", rubric_version=version)


def test_an_import_carries_rounds_and_refuses_a_repeat_without_one(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=1)
    version = session.rubric_version
    row = {"id": "r1", "prompt": "p", "response": "r", "labels": [
        {"annotator": "kim", "criterion": "correct", "value": 2},
        {"annotator": "kim", "criterion": "correct", "value": 3, "round": 2}]}
    result = _import(personas, version, [row])
    assert result.ok, [str(p) for p in result.problems]
    assert sorted(HumanLabel.objects.filter(item__dataset=result.dataset).values_list(
        "round", "value")) == [(1, "2"), (2, "3")]
    repeat = {**row, "id": "r2", "labels": [row["labels"][0], row["labels"][0]]}
    result = _import(personas, version, [repeat], name="repeat")
    assert not result.ok
    assert "in round 1 (a repeat needs its own \"round\"" in result.problems[0].message


UNREADABLE = {"9" * 5000: "too long", "NaN": "NaN", "Infinity": "Infinity",
              '"\\u0000"': "NUL"}


@pytest.mark.parametrize("bad", ["0", "-1", '"2"', "true", "1.5", "null", "[2]", '{"n": 2}',
                                 "1001", *UNREADABLE], ids=lambda text: text[:12])
def test_a_bad_round_in_a_file_is_a_problem_with_its_field(personas, bad):
    session = make_session(personas.project, assignees=[personas.labeller], items=1)
    line = ('{"id": "r1", "prompt": "p", "response": "r", "labels": [{"annotator": "kim", '
            f'"criterion": "correct", "value": 2, "round": {bad}}}]}}\n')
    result = dataset_file_import(project=personas.project, dataset_name="imported",
                                 stream=io.BytesIO(line.encode()), fmt="jsonl",
                                 rubric_version=session.rubric_version)
    assert not result.ok and result.problems[0].line == 1
    if bad in UNREADABLE:  # the line itself is not JSON the importer reads
        assert UNREADABLE[bad] in result.problems[0].message
    else:
        assert result.problems[0].field == "labels[0].round"
    assert not HumanLabel.objects.filter(item__dataset__name="imported").exists()


def test_a_session_export_with_rounds_round_trips(personas):
    first = make_session(personas.project, assignees=[personas.labeller], items=2)
    _label_all(first, personas.labeller, VALUES[:2])
    second = _second_session(first, personas)
    _label_all(second, personas.labeller, VALUES[2:4])
    body = b"".join(personas.client("owner").get(
        url("dataset_labels_export", dataset_id=first.dataset_id)).streaming_content)
    result = dataset_file_import(project=personas.project, dataset_name="copy",
                                 stream=io.BytesIO(body), fmt="jsonl",
                                 rubric_version=first.rubric_version)
    assert result.ok, [str(p) for p in result.problems]

    def rows(dataset):
        return sorted(HumanLabel.objects.filter(item__dataset=dataset).values_list(
            "item__external_id", "annotator", "criterion_key", "round", "value"))
    assert rows(result.dataset) == rows(first.dataset) and len(rows(first.dataset)) == 8
