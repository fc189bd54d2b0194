"""dataset_file_import, the one service behind the upload page, the command and the API.

All or nothing: every bad input is reported with its line and field and leaves no row behind.
The helpers at the top are shared with test_command.py and test_views.py.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.test import override_settings

from apps.datasets.models import Dataset, Item, Kind
from apps.intake import services as intake
from apps.intake.services import BATCH, dataset_file_import
from apps.judging.models import JudgeRun, RunKind, Verdict
from apps.labeling.models import HumanLabel, LabelSource
from apps.rubrics import content as content_mod
from apps.rubrics.services import rubric_import
from tests.factories import ProjectFactory
from tests.world import POINTWISE

PAIRWISE = {
    "rubric": "preference",
    "name": "Preference",
    "mode": "pairwise",
    "criteria": [
        {"key": "overall", "name": "Overall", "weight": 1,
         "scale": {"type": "pairwise", "levels": [
             {"value": "A", "label": "A", "anchor": "A is better."},
             {"value": "B", "label": "B", "anchor": "B is better."},
             {"value": "tie", "label": "Tie", "anchor": "Neither is better."}]}},
    ],
}


# -- helpers shared by the dataset tests ------------------------------------------------------
def jsonl(*rows) -> bytes:
    """One line per row: dicts become JSON, str and bytes are written as they are."""
    lines = []
    for row in rows:
        if isinstance(row, dict):
            row = json.dumps(row)
        lines.append(row if isinstance(row, bytes) else row.encode("utf-8"))
    return b"\n".join(lines) + b"\n"


def item(i, **extra) -> dict:
    return {"id": f"q{i}", "prompt": f"prompt {i}", "response": f"response {i}", **extra}


def pair(i, **extra) -> dict:
    return {"id": f"p{i}", "prompt": f"prompt {i}", "response_a": "a", "response_b": "b", **extra}


def publish(project, spec: dict = POINTWISE, **overrides):
    content = content_mod.validate({**spec, **overrides})
    rubric, version, _ = rubric_import(project=project, content=content, publish=True)
    return version


def stored() -> dict[str, int]:
    """What an import may have written, counted across every project."""
    return {
        "datasets": Dataset.objects.count(),
        "items": Item.objects.count(),
        "labels": HumanLabel.objects.count(),
        "verdicts": Verdict.objects.count(),
        "runs": JudgeRun.objects.count(),
    }


def run_import(project, data: bytes, *, fmt: str = "jsonl", name: str = "data", **kw):
    return dataset_file_import(project=project, dataset_name=name, stream=io.BytesIO(data),
                               fmt=fmt, size=len(data), **kw)


def problem_texts(result) -> list[str]:
    return [str(p) for p in result.problems]


@pytest.fixture
def project(db):
    return ProjectFactory(slug="acme")


@pytest.fixture
def rubric(project):
    return publish(project)


# -- what a good file stores ------------------------------------------------------------------
def test_pointwise_rows_become_items_in_file_order(project):
    data = jsonl(item(1, reference="ref 1"), item(2), {"id": 3, "prompt": "", "response": "r"})

    result = run_import(project, data)

    assert result.ok, problem_texts(result)
    assert result.items == 3
    dataset = Dataset.objects.get(project=project, name="data")
    assert dataset.kind == Kind.POINTWISE
    assert dataset.item_count == 3
    items = list(dataset.items.order_by("position"))
    assert [(i.external_id, i.position) for i in items] == [("q1", 0), ("q2", 1), ("3", 2)]
    assert items[0].reference == "ref 1"
    assert result.summary() == "Imported 3 items into 'data'"


def test_pairwise_kind_is_taken_from_the_rows(project):
    result = run_import(project, jsonl(pair(1), pair(2)))

    assert result.ok, problem_texts(result)
    dataset = result.dataset
    assert dataset.kind == Kind.PAIRWISE
    assert list(dataset.items.values_list("response_a", "response_b")) == [("a", "b")] * 2


def test_bom_at_the_start_of_a_jsonl_file_is_accepted(project):
    result = run_import(project, b"\xef\xbb\xbf" + jsonl(item(1), item(2)))

    assert result.ok, problem_texts(result)
    assert Item.objects.filter(external_id="q1").exists()


def test_bom_at_the_start_of_a_csv_file_is_accepted(project):
    data = b"\xef\xbb\xbfid,prompt,response\nq1,hello,world\n"

    result = run_import(project, data, fmt="csv")

    assert result.ok, problem_texts(result)
    # The BOM must not end up glued to the first column's name ("\ufeffid").
    assert Item.objects.get().external_id == "q1"


def test_csv_with_quoted_newlines_keeps_them_and_counts_lines_right(project):
    data = (
        b'id,prompt,response\n'
        b'q1,"line one\nline two\nline three",fine\n'
        b'q2,"two\nlines",ok\n'
        b'q1,again,ok\n'  # line 7: the id of line 2 again
    )

    result = run_import(project, data, fmt="csv")

    assert problem_texts(result) == ["line 7, id: duplicate id 'q1' in this file"]
    good = run_import(project, data.replace(b"q1,again", b"q3,again"), fmt="csv")
    assert good.ok
    assert Item.objects.get(external_id="q1").prompt == "line one\nline two\nline three"


def test_csv_problem_names_the_first_line_of_a_multiline_record(project):
    data = b'id,prompt,response\nq1,p,r\n\n\nq2,"a\nb",r,extra\n'

    result = run_import(project, data, fmt="csv")

    # The record starts on line 5 (after two blank lines) and ends on line 6.
    assert problem_texts(result) == ["line 5: more values than columns"]


def test_csv_with_crlf_line_endings_is_read(project):
    data = b'id,prompt,response\r\nq1,"a\r\nb",r\r\nq2,p,r\r\n'

    result = run_import(project, data, fmt="csv")

    assert result.ok, problem_texts(result)
    assert Item.objects.get(external_id="q1").prompt == "a\r\nb"


def test_csv_labels_cell_holds_json(project, rubric):
    labels = json.dumps([{"annotator": "ann", "criterion": "correct", "value": 3}])
    judgments = json.dumps([{"judge": "gpt", "criterion": "safe", "value": 1}])
    data = io.StringIO()
    writer = csv.writer(data)
    writer.writerow(["id", "prompt", "response", "labels", "judgments"])
    writer.writerow(["q1", "p", "r", labels, judgments])
    writer.writerow(["q2", "p", "r", "", ""])

    result = run_import(project, data.getvalue().encode(), fmt="csv")

    assert result.ok, problem_texts(result)
    assert (result.items, result.labels, result.verdicts) == (2, 1, 1)
    label = HumanLabel.objects.get()
    assert (label.item.external_id, label.annotator, label.value) == ("q1", "ann", "3")


def test_csv_labels_cell_with_bad_json_is_reported_with_its_column(project, rubric):
    data = b'id,prompt,response,labels\nq1,p,r,"[{not json"\n'

    result = run_import(project, data, fmt="csv")

    assert len(result.problems) == 1
    assert str(result.problems[0]).startswith("line 2, labels: invalid JSON")
    assert stored()["datasets"] == 0


def test_metadata_and_unknown_columns_are_kept_in_metadata(project):
    data = jsonl(item(1, metadata={"source": "web", "n": 2}, split="test", score=0.5))

    result = run_import(project, data)

    assert result.ok
    assert Item.objects.get().metadata == {"source": "web", "n": 2, "split": "test", "score": 0.5}


def test_csv_metadata_cell_and_unknown_columns_are_kept_in_metadata(project):
    data = b'id,prompt,response,metadata,split\nq1,p,r,"{""source"": ""web""}",test\n'

    result = run_import(project, data, fmt="csv")

    assert result.ok, problem_texts(result)
    assert Item.objects.get().metadata == {"source": "web", "split": "test"}


def test_metadata_that_is_not_an_object_is_refused(project):
    result = run_import(project, jsonl(item(1, metadata=[1, 2])))

    assert problem_texts(result) == ["line 1, metadata: must be a JSON object"]


# -- labels and judgments ---------------------------------------------------------------------
def test_labels_are_stored_as_human_labels_with_annotator_names(project, rubric):
    data = jsonl(
        item(1, labels=[{"annotator": "alice", "criterion": "correct", "value": 3},
                        {"annotator": "bob", "criterion": "correct", "value": "2",
                         "comment": "half right"}]),
        item(2, labels=[{"annotator": "alice", "criterion": "safe", "value": 0}]),
    )

    result = run_import(project, data)

    assert result.ok, problem_texts(result)
    assert result.labels == 3
    labels = {(lb.item.external_id, lb.annotator, lb.criterion_key): lb
              for lb in HumanLabel.objects.select_related("item")}
    assert set(labels) == {("q1", "alice", "correct"), ("q1", "bob", "correct"),
                           ("q2", "alice", "safe")}
    bob = labels[("q1", "bob", "correct")]
    assert (bob.value, bob.comment, bob.source) == ("2", "half right", LabelSource.IMPORT)
    assert bob.scale_signature == "ordinal:1,2,3"
    assert result.rubric_version == rubric


def test_judgments_become_one_imported_run_per_judge(project, rubric):
    data = jsonl(
        item(1, judgments=[{"judge": "gpt", "criterion": "correct", "value": 3,
                            "rationale": "right"},
                           {"judge": "llama", "criterion": "correct", "value": 1}]),
        item(2, judgments=[{"judge": "gpt", "criterion": "correct", "value": 2}]),
    )

    result = run_import(project, data)

    assert result.ok, problem_texts(result)
    assert result.judges == ["gpt", "llama"]
    runs = {run.name: run for run in JudgeRun.objects.all()}
    assert set(runs) == {"gpt", "llama"}
    assert all(r.kind == RunKind.IMPORTED and r.rubric_version == rubric for r in runs.values())
    assert runs["gpt"].verdicts.count() == 2
    assert runs["gpt"].verdicts.get(item__external_id="q1").rationale == "right"
    assert result.summary() == "Imported 2 items, 3 verdicts of gpt, llama into 'data'"


def test_judgment_with_mean_and_samples_keeps_the_mean_and_takes_the_nearest_level(
    project, rubric
):
    data = jsonl(
        item(1, judgments=[{"judge": "gpt", "criterion": "correct", "mean": 2.4, "samples": 3}]),
        item(2, judgments=[{"judge": "gpt", "criterion": "correct", "mean": 2.5, "samples": 3}]),
    )

    result = run_import(project, data)

    assert result.ok, problem_texts(result)
    verdicts = {v.item.external_id: v for v in Verdict.objects.select_related("item")}
    assert (verdicts["q1"].value, verdicts["q1"].mean, verdicts["q1"].n_samples) == ("2", 2.4, 3)
    assert verdicts["q2"].value == "3"  # halves round up
    assert JudgeRun.objects.get().samples == 3


def test_judgment_mean_outside_the_scale_is_refused(project, rubric):
    data = jsonl(item(1, judgments=[{"judge": "gpt", "criterion": "correct", "mean": 3.5}]))

    result = run_import(project, data)

    assert [(p.line, p.field) for p in result.problems] == [(1, "judgments[0].mean")]


def test_unparseable_flag_is_kept_on_the_verdict(project):
    publish(project, PAIRWISE)
    data = jsonl(pair(1, judgments=[{"judge": "gpt-3.5", "criterion": "overall", "value": "tie",
                                     "flag": "unparseable"}]))

    result = run_import(project, data)

    assert result.ok, problem_texts(result)
    assert Verdict.objects.get().flag == "unparseable"


def test_unknown_flag_is_refused(project, rubric):
    data = jsonl(item(1, judgments=[{"judge": "gpt", "criterion": "correct", "value": 1,
                                     "flag": "odd"}]))

    result = run_import(project, data)

    assert [(p.line, p.field) for p in result.problems] == [(1, "judgments[0].flag")]


def test_label_with_unknown_criterion_is_refused_naming_the_known_ones(project, rubric):
    data = jsonl(item(1), item(2, labels=[{"annotator": "a", "criterion": "tone", "value": 1}]))

    result = run_import(project, data)

    assert problem_texts(result) == [
        "line 2, labels[0].criterion: unknown criterion 'tone'; known: correct, safe"
    ]
    assert stored() == dict.fromkeys(stored(), 0)


def test_value_outside_the_criterion_scale_is_refused(project, rubric):
    data = jsonl(
        item(1, labels=[{"annotator": "a", "criterion": "correct", "value": 7}]),
        item(2, judgments=[{"judge": "gpt", "criterion": "safe", "value": 2}]),
    )

    result = run_import(project, data)

    assert problem_texts(result) == [
        "line 1, labels[0].value: 7 is outside the scale; allowed: [1, 2, 3]",
        "line 2, judgments[0].value: 2 is outside the scale; allowed: [0, 1]",
    ]
    assert stored() == dict.fromkeys(stored(), 0)


def test_labels_without_any_rubric_get_a_clear_message(project):
    data = jsonl(item(1, labels=[{"annotator": "a", "criterion": "correct", "value": 1}]),
                 item(2, labels=[{"annotator": "a", "criterion": "correct", "value": 1}]))

    result = run_import(project, data)

    # Said once, on the first row that needed it, not once per row.
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert (problem.line, problem.field) == (1, "labels")
    assert problem.message == ("rows carry labels or verdicts, but the project has no pointwise "
                               "rubric to check them against: create it first")


def test_labels_with_two_candidate_rubrics_ask_which_one(project, rubric):
    publish(project, rubric="helpful-two")
    data = jsonl(item(1, labels=[{"annotator": "a", "criterion": "correct", "value": 1}]))

    result = run_import(project, data)

    assert len(result.problems) == 1
    message = result.problems[0].message
    assert "the project has 2 pointwise rubrics (" in message and "helpful-two" in message
    assert "name the one to check them against (--rubric SLUG)" in message
    unknown = run_import(project, data, rubric_slug="nope")
    assert "the project has no rubric 'nope'; its rubrics: " in unknown.problems[0].message

    named = run_import(project, data, rubric_slug="helpful-two")
    assert named.ok, problem_texts(named)
    assert named.rubric_version.rubric.slug == "helpful-two"


def test_labels_with_an_unknown_rubric_name_say_which_one(project, rubric):
    data = jsonl(item(1, labels=[{"annotator": "a", "criterion": "correct", "value": 1}]))

    result = run_import(project, data, rubric_slug="nope")

    assert "'nope'" in result.problems[0].message


def test_labels_against_a_rubric_of_the_other_kind_are_refused(project, rubric):
    data = jsonl(pair(1, labels=[{"annotator": "a", "criterion": "correct", "value": 1}]))

    result = run_import(project, data, rubric_slug=rubric.rubric.slug)

    assert len(result.problems) == 1
    assert "is pointwise, the dataset is pairwise" in result.problems[0].message


# -- bad input: every problem with its line and field, nothing stored ----------------------------
def test_invalid_json_is_reported_with_its_line_and_column(project):
    data = jsonl(item(1), '{"id": "q2", "prompt": "x" "response": "y"}', "[1, 2]")

    result = run_import(project, data)

    assert problem_texts(result) == [
        "line 2: invalid JSON: Expecting ',' delimiter (column 28)",
        "line 3: each line must be one JSON object",
    ]
    assert stored() == dict.fromkeys(stored(), 0)


def test_nan_and_infinity_are_not_json(project):
    data = jsonl('{"id": "q1", "prompt": "p", "response": "r", "metadata": {"x": NaN}}',
                 '{"id": "q2", "prompt": "p", "response": "r", "score": -Infinity}')

    result = run_import(project, data)

    assert problem_texts(result) == [
        "line 1: invalid JSON: NaN is not a JSON value",
        "line 2: invalid JSON: -Infinity is not a JSON value",
    ]


def test_json_nested_too_deeply_is_a_problem_not_a_crash(project):
    deep = "[" * 100_000 + "]" * 100_000
    data = jsonl(f'{{"id": "q1", "prompt": "p", "response": "r", "metadata": {{"x": {deep}}}}}')

    result = run_import(project, data)

    assert problem_texts(result) == ["line 1: invalid JSON: nested too deeply"]


def test_missing_field_is_reported_with_line_and_field(project):
    data = jsonl(item(1), {"id": "q2", "prompt": "p"}, {"prompt": "p", "response": "r"},
                 {"id": "q4", "response": "r"})

    result = run_import(project, data)

    assert problem_texts(result) == [
        "line 2, response: missing", "line 3, id: missing", "line 4, prompt: missing"
    ]


def test_field_of_the_wrong_type_is_refused(project):
    result = run_import(project, jsonl(item(1, response=42), {**item(2), "id": True}))

    assert problem_texts(result) == [
        "line 1, response: must be text", "line 2, id: must be text or a whole number"
    ]


def test_duplicate_id_is_reported_with_its_line(project):
    data = jsonl(item(1), item(2), item(1), {**item(9), "id": "q2"})

    result = run_import(project, data)

    assert problem_texts(result) == [
        "line 3, id: duplicate id 'q1' in this file",
        "line 4, id: duplicate id 'q2' in this file",
    ]
    assert stored() == dict.fromkeys(stored(), 0)


def test_duplicate_id_in_a_later_batch_is_reported_with_its_line(project):
    # Ids of earlier batches are looked up in the database, not kept in memory.
    rows = [item(i) for i in range(BATCH + 10)] + [item(3), item(BATCH + 1)]

    result = run_import(project, jsonl(*rows))

    assert problem_texts(result) == [
        f"line {BATCH + 11}, id: duplicate id 'q3' in this file",
        f"line {BATCH + 12}, id: duplicate id 'q{BATCH + 1}' in this file",
    ]
    assert stored() == dict.fromkeys(stored(), 0)


def test_problems_are_listed_in_file_order(project):
    rows = [item(i) for i in range(BATCH + 10)] + [item(5), {"id": "x"}]

    result = run_import(project, jsonl(*rows))

    assert [p.line for p in result.problems] == [BATCH + 11, BATCH + 12, BATCH + 12]


def test_pairwise_row_in_a_pointwise_dataset_is_refused(project):
    result = run_import(project, jsonl(item(1), pair(2)))

    assert [(p.line, p.field, p.message) for p in result.problems] == [
        (2, "response_a", "pairwise row in a pointwise dataset"), (2, "response", "missing"),
    ]


def test_pointwise_row_in_a_pairwise_dataset_is_refused(project):
    result = run_import(project, jsonl(item(1)), kind=Kind.PAIRWISE)

    assert (1, "response", "pointwise row in a pairwise dataset") in [
        (p.line, p.field, p.message) for p in result.problems
    ]


def test_non_utf8_bytes_are_reported_with_their_line(project):
    data = jsonl(item(1), b'{"id": "q2", "prompt": "caf\xe9", "response": "r"}', item(3),
                 b"\xff\xfe")

    result = run_import(project, data)

    assert problem_texts(result) == [
        "line 2: not UTF-8 (byte 28 of the line)", "line 4: not UTF-8 (byte 1 of the line)"
    ]
    assert stored() == dict.fromkeys(stored(), 0)


def test_non_utf8_bytes_in_csv_are_reported_with_their_line(project):
    data = b"id,prompt,response\nq1,p,r\nq2,caf\xe9,r\n"

    result = run_import(project, data, fmt="csv")

    assert len(result.problems) == 1
    assert str(result.problems[0]).startswith("line 3: not UTF-8 (byte 7 of the line)")


def test_utf16_file_is_refused_as_not_utf8(project):
    data = '{"id": "q1", "prompt": "p", "response": "r"}\n'.encode("utf-16")

    result = run_import(project, data)

    assert not result.ok
    assert "not UTF-8" in result.problems[0].message


@pytest.mark.parametrize("fmt, data, message", [
    ("jsonl", b"", "file: the file is empty"),
    ("jsonl", b"\n  \n\n", "file: the file is empty"),
    ("jsonl", b"\xef\xbb\xbf", "file: the file is empty"),
    ("csv", b"", "file: the file is empty"),
    ("csv", b"id,prompt,response\n", "file: the file has a header but no rows"),
])
def test_empty_file_is_refused(project, fmt, data, message):
    result = run_import(project, data, fmt=fmt)

    assert problem_texts(result) == [message]
    assert result.summary() == "1 problem(s); nothing was stored"
    assert stored() == dict.fromkeys(stored(), 0)


def test_csv_with_an_unclosed_quote_is_reported(project):
    data = b'id,prompt,response\nq1,"never closed,r\nq2,p,r\n'

    result = run_import(project, data, fmt="csv")

    assert not result.ok
    assert result.problems[0].line == 2


def test_csv_with_more_values_than_columns_is_refused(project):
    result = run_import(project, b"id,prompt,response\nq1,p,r,extra\n", fmt="csv")

    assert problem_texts(result) == ["line 2: more values than columns"]


@override_settings(DATASET_MAX_UPLOAD_MB=1)
def test_file_over_the_size_limit_is_refused_before_it_is_read(project):
    class Unreadable(io.BytesIO):
        def __iter__(self):
            raise AssertionError("an oversized file must not be read")

    result = dataset_file_import(project=project, dataset_name="big", stream=Unreadable(),
                                 fmt="jsonl", size=1024 * 1024 + 1)

    assert len(result.problems) == 1
    assert "the limit is 1 MB" in result.problems[0].message
    assert stored()["datasets"] == 0


def test_nul_character_in_any_field_is_refused(project, rubric):
    data = jsonl(
        item(1, prompt="a\u0000b"),
        item(2, metadata={"note": "x\u0000"}),
        item(3, labels=[{"annotator": "a", "criterion": "correct", "value": 1,
                         "comment": "\u0000"}]),
        item(4, judgments=[{"judge": "gpt", "criterion": "correct", "value": 1,
                            "rationale": "bad\u0000"}]),
        item(5, prompt="a backslash-u spelled out: \\u0000 is fine"),
    )

    result = run_import(project, data)

    assert [(p.line, p.field, p.message) for p in result.problems] == [
        (1, "prompt", "contains a NUL character"),
        (2, "metadata", "contains a NUL character"),
        (3, "labels", "contains a NUL character"),
        (4, "judgments", "contains a NUL character"),
    ]
    assert stored() == dict.fromkeys(stored(), 0)


def test_nul_character_in_a_csv_cell_is_refused(project):
    result = run_import(project, b"id,prompt,response\nq1,a\x00b,r\n", fmt="csv")

    assert problem_texts(result) == ["line 2, prompt: contains a NUL character"]


def test_unpaired_surrogate_escape_is_refused(project):
    data = jsonl('{"id": "q1", "prompt": "\\ud83d alone", "response": "r"}',
                 '{"id": "q2", "prompt": "\\ud83d\\ude00 paired", "response": "r"}')

    result = run_import(project, data)

    assert [(p.line, p.field) for p in result.problems] == [(1, "prompt")]
    assert "surrogate" in result.problems[0].message


@override_settings(IMPORT_MAX_ERRORS=3)
def test_problems_are_reported_up_to_the_cap(project):
    data = jsonl(*[{"id": f"q{i}"} for i in range(10)])

    result = run_import(project, data)

    assert len(result.problems) == 3
    assert result.stopped_early
    assert "stopped at the cap" in result.summary()


def test_every_problem_in_the_file_is_reported_not_only_the_first(project):
    data = jsonl(item(1), "not json", item(3), {"id": "q4"}, item(1))

    result = run_import(project, data)

    assert [p.line for p in result.problems] == [2, 4, 4, 5]


def test_nothing_is_stored_when_a_bad_row_follows_inserted_batches(project, rubric, monkeypatch):
    inserted = []
    real_insert = intake.items_insert

    def counting_insert(dataset, items, **kw):
        inserted.append(len(items))
        return real_insert(dataset, items, **kw)

    monkeypatch.setattr(intake, "items_insert", counting_insert)
    rider = {"labels": [{"annotator": "a", "criterion": "correct", "value": 2}],
             "judgments": [{"judge": "gpt", "criterion": "correct", "value": 3}]}
    good = [item(i, **rider) for i in range(2 * BATCH + 1)]
    data = jsonl(*good, {"id": "late", "prompt": "p"})

    result = run_import(project, data)

    # Two full batches had reached the database before the bad last row was read.
    assert inserted[:2] == [BATCH, BATCH]
    assert problem_texts(result) == [f"line {2 * BATCH + 2}, response: missing"]
    assert result.dataset is None and result.items == 0
    assert stored() == dict.fromkeys(stored(), 0)


def test_nothing_is_stored_when_appending_fails_after_inserted_batches(project):
    assert run_import(project, jsonl(item(0))).ok
    before = stored()
    data = jsonl(*[item(i) for i in range(1, BATCH + 2)], "oops")

    result = run_import(project, data)

    assert problem_texts(result) == [f"line {BATCH + 2}: invalid JSON: Expecting value (column 1)"]
    assert stored() == before
    assert Dataset.objects.get().item_count == 1


def test_the_file_is_read_as_a_stream(project, monkeypatch):
    class CountingStream(io.BytesIO):
        read_bytes = 0

        def __iter__(self):
            return self

        def __next__(self):
            line = self.readline()
            if not line:
                raise StopIteration
            CountingStream.read_bytes += len(line)
            return line

    data = jsonl(*[item(i) for i in range(3 * BATCH)])
    seen_at_first_insert = []
    real_insert = intake.items_insert

    def watching_insert(dataset, items, **kw):
        seen_at_first_insert.append(CountingStream.read_bytes)
        return real_insert(dataset, items, **kw)

    monkeypatch.setattr(intake, "items_insert", watching_insert)
    result = dataset_file_import(project=project, dataset_name="s",
                                 stream=CountingStream(data), fmt="jsonl", size=len(data))

    assert result.ok
    assert len(seen_at_first_insert) == 3
    # The first batch went in when a third of the file had been read, not all of it.
    assert seen_at_first_insert[0] < len(data) / 2


@override_settings(DEBUG=True)
def test_debug_mode_does_not_keep_the_sql_of_every_batch(project):
    from django.db import connection

    data = jsonl(*[item(i, response="r" * 200) for i in range(2 * BATCH + 1)])

    result = run_import(project, data)

    assert result.ok
    logged = sum(len(q["sql"]) for q in connection.queries_log)
    assert logged < len(data) / 10


def test_a_dataset_created_by_a_concurrent_import_is_reported_not_raised(project, monkeypatch):
    run_import(project, jsonl(item(1)))

    class MissesTheRow:
        """The look-up runs before the other import commits; the insert runs after."""

        def select_for_update(self):
            return Dataset.objects.none()

        def __getattr__(self, name):
            return getattr(Dataset.objects, name)

    monkeypatch.setattr(intake, "Dataset", type("Dataset", (), {"objects": MissesTheRow()}))

    result = run_import(project, jsonl(item(2)))

    assert problem_texts(result) == [
        "file, dataset: another import created or changed 'data' at the same time; nothing "
        "was stored, try again"
    ]
    assert Item.objects.count() == 1


# -- appending --------------------------------------------------------------------------------
def test_appending_adds_new_ids_after_the_existing_items(project, rubric):
    assert run_import(project, jsonl(item(1), item(2))).ok
    data = jsonl(item(3, judgments=[{"judge": "gpt", "criterion": "correct", "value": 1}]))

    result = run_import(project, data)

    assert result.ok, problem_texts(result)
    dataset = Dataset.objects.get()
    assert dataset.item_count == 3
    assert list(dataset.items.values_list("external_id", "position")) == [
        ("q1", 0), ("q2", 1), ("q3", 2)
    ]


def test_appending_an_id_already_in_the_dataset_is_refused(project):
    assert run_import(project, jsonl(item(1), item(2))).ok

    result = run_import(project, jsonl(item(3), item(2)))

    assert problem_texts(result) == ["line 2, id: id 'q2' is already in the dataset"]
    assert Dataset.objects.get().item_count == 2
    assert not Item.objects.filter(external_id="q3").exists()


def test_appending_with_another_kind_is_refused(project):
    assert run_import(project, jsonl(item(1))).ok

    result = run_import(project, jsonl(pair(1)), kind=Kind.PAIRWISE)

    assert problem_texts(result) == ["file: dataset 'data' is pointwise, not pairwise"]
    assert Item.objects.count() == 1


def test_appending_pairwise_rows_to_a_pointwise_dataset_is_refused(project):
    assert run_import(project, jsonl(item(1))).ok

    result = run_import(project, jsonl(pair(2)))

    assert (1, "response_a", "pairwise row in a pointwise dataset") in [
        (p.line, p.field, p.message) for p in result.problems
    ]


def test_appending_verdicts_of_a_known_judge_extends_its_imported_run(project, rubric):
    verdict = [{"judge": "gpt", "criterion": "correct", "value": 1}]
    assert run_import(project, jsonl(item(1, judgments=verdict))).ok

    result = run_import(project, jsonl(item(2, judgments=verdict)))

    assert result.ok, problem_texts(result)
    assert JudgeRun.objects.get().verdicts.count() == 2


def test_same_dataset_name_in_another_project_is_another_dataset(project):
    other = ProjectFactory(slug="other")
    assert run_import(other, jsonl(item(1))).ok

    result = run_import(project, jsonl(item(1)))

    assert result.ok
    assert Dataset.objects.filter(name="data").count() == 2


def test_dataset_needs_a_name(project):
    result = run_import(project, jsonl(item(1)), name="  ")

    assert problem_texts(result) == ["file, dataset: a dataset needs a name"]
