"""`manage.py dataset_import`: the same all-or-nothing import, from the command line.

A bad file raises CommandError (exit status 1 from the shell) with a one-line reason, and lists
every problem on stderr with its line and field.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError
from django.db import connections
from django.test import override_settings

from apps.datasets.models import Dataset, Item, Kind
from apps.intake.services import BATCH
from apps.judging.models import JudgeRun
from apps.labeling.models import HumanLabel
from tests.datasets.test_import import PAIRWISE, item, jsonl, pair, publish, stored
from tests.factories import ProjectFactory


@pytest.fixture
def project(db):
    return ProjectFactory(slug="acme")


def write(tmp_path, data: bytes, name: str = "rows.jsonl"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def run(path, *args, project: str = "acme", dataset: str = "data") -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("dataset_import", str(path), "--project", project, "--dataset", dataset, *args,
                 stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def failing(path, *args, **kw) -> tuple[str, str]:
    """Run the command expecting CommandError; return (its message, what went to stderr)."""
    err = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("dataset_import", str(path), "--project", kw.get("project", "acme"),
                     "--dataset", kw.get("dataset", "data"), *args, stderr=err)
    message = str(caught.value)
    assert "\n" not in message  # one line
    return message, err.getvalue()


def test_command_imports_a_file_and_prints_the_summary(project, tmp_path):
    path = write(tmp_path, jsonl(item(1), item(2)))

    out, _ = run(path)

    assert out.strip() == "Imported 2 items into 'data'"
    assert Dataset.objects.get(project=project).item_count == 2


def test_command_prints_json_when_asked(project, tmp_path):
    publish(project)
    path = write(tmp_path, jsonl(
        item(1, labels=[{"annotator": "a", "criterion": "correct", "value": 1}],
             judgments=[{"judge": "gpt", "criterion": "correct", "value": 2}]),
    ))

    out, _ = run(path, "--json")

    body = json.loads(out)
    assert body["items"] == 1 and body["labels"] == 1 and body["verdicts"] == 1
    assert body["judges"] == ["gpt"] and body["dataset"] == "data"
    assert body["dataset_id"] == Dataset.objects.get().pk


def test_command_imports_csv_with_labels_in_a_json_cell(project, tmp_path):
    publish(project)
    cell = json.dumps([{"annotator": "a", "criterion": "safe", "value": 1}]).replace('"', '""')
    path = write(tmp_path, f'id,prompt,response,labels\nq1,p,r,"{cell}"\n'.encode(), "rows.csv")

    run(path)

    assert HumanLabel.objects.get().criterion_key == "safe"


def test_command_takes_the_format_from_the_flag(project, tmp_path):
    path = write(tmp_path, b"id,prompt,response\nq1,p,r\n", "rows.txt")

    run(path, "--format", "csv")

    assert Item.objects.get().external_id == "q1"


def test_command_uses_the_named_rubric_and_kind(project, tmp_path):
    publish(project, PAIRWISE)
    publish(project, PAIRWISE, rubric="preference-two")
    path = write(tmp_path, jsonl(pair(1, labels=[{"annotator": "a", "criterion": "overall",
                                                  "value": "B"}])))

    run(path, "--rubric", "preference-two", "--kind", "pairwise")

    label = HumanLabel.objects.get()
    assert label.value == "B"
    assert Dataset.objects.get().kind == Kind.PAIRWISE


@pytest.mark.parametrize("data, expected", [
    (jsonl(item(1), "{oops"), "line 2: invalid JSON"),
    (jsonl(item(1), {"id": "q2", "prompt": "p"}), "line 2, response: missing"),
    (jsonl(item(1), item(2), item(1)), "line 3, id: duplicate id 'q1' in this file"),
    (jsonl(item(1), pair(2)), "line 2, response_a: pairwise row in a pointwise dataset"),
    (jsonl(item(1, labels=[{"annotator": "a", "criterion": "correct", "value": 9}])),
     "line 1, labels[0].value:"),
    (jsonl(item(1), b'{"id": "q2", "prompt": "\xff", "response": "r"}'), "line 2: not UTF-8"),
    (b"", "file: the file is empty"),
])
def test_command_fails_with_each_problem_on_stderr(project, tmp_path, data, expected):
    publish(project)
    path = write(tmp_path, data)

    message, err = failing(path)

    assert message.startswith(f"{path}: ")
    assert message.endswith(" problem(s); nothing was stored")
    assert f"{path}: {expected}" in err
    assert stored()["datasets"] == 0 and stored()["items"] == 0


def test_command_accepts_a_bom_and_csv_quoted_newlines(project, tmp_path):
    path = write(tmp_path, b'\xef\xbb\xbfid,prompt,response\nq1,"a\nb",r\nq2,p,r\n', "rows.csv")

    run(path)

    assert Item.objects.get(external_id="q1").prompt == "a\nb"


def test_command_stores_nothing_when_the_bad_row_comes_after_inserted_batches(project, tmp_path):
    publish(project)
    rider = {"labels": [{"annotator": "a", "criterion": "correct", "value": 2}],
             "judgments": [{"judge": "gpt", "criterion": "correct", "value": 3}]}
    path = write(tmp_path, jsonl(*[item(i, **rider) for i in range(BATCH + 5)], {"id": "x"}))

    message, err = failing(path)

    assert "2 problem(s)" in message
    assert f"line {BATCH + 6}, prompt: missing" in err
    assert stored() == dict.fromkeys(stored(), 0)
    assert not JudgeRun.objects.exists()


@override_settings(DATASET_MAX_UPLOAD_MB=1)
def test_command_refuses_a_file_over_the_size_limit(project, tmp_path):
    path = write(tmp_path, jsonl(*[item(i, response="x" * 1000) for i in range(1100)]))

    message, err = failing(path)

    assert "the limit is 1 MB (DATASET_MAX_UPLOAD_MB)" in err
    assert stored()["datasets"] == 0


def test_command_appends_new_ids_and_refuses_known_ones(project, tmp_path):
    run(write(tmp_path, jsonl(item(1)), "a.jsonl"))
    run(write(tmp_path, jsonl(item(2)), "b.jsonl"))

    _, err = failing(write(tmp_path, jsonl(item(3), item(1)), "c.jsonl"))

    assert "line 2, id: id 'q1' is already in the dataset" in err
    assert list(Item.objects.values_list("external_id", flat=True).order_by("position")) == [
        "q1", "q2"
    ]


def test_command_refuses_another_kind_for_an_existing_dataset(project, tmp_path):
    run(write(tmp_path, jsonl(item(1)), "a.jsonl"))

    _, err = failing(write(tmp_path, jsonl(pair(1)), "b.jsonl"), "--kind", "pairwise")

    assert "dataset 'data' is pointwise, not pairwise" in err


def test_command_explains_labels_without_a_rubric(project, tmp_path):
    path = write(tmp_path, jsonl(item(1, labels=[{"annotator": "a", "criterion": "c",
                                                  "value": 1}])))

    _, err = failing(path)

    assert ("line 1, labels: rows carry labels or verdicts, but the project has no pointwise "
            "rubric to check them against: create it first") in err


def test_command_with_an_unknown_project_fails(db, tmp_path):
    message, _ = failing(write(tmp_path, jsonl(item(1))), project="nope")

    assert message == "no project with slug 'nope'"


def test_command_with_a_missing_file_fails(project, tmp_path):
    message, _ = failing(tmp_path / "missing.jsonl")

    assert message == f"{tmp_path / 'missing.jsonl'}: no such file"


def test_command_with_an_unknown_suffix_fails(project, tmp_path):
    message, _ = failing(write(tmp_path, jsonl(item(1)), "rows.xml"))

    assert message == "rows.xml: use a .jsonl or .csv file"


def test_command_exits_non_zero_with_the_reason_on_stderr(project, tmp_path, capsys,
                                                           monkeypatch):
    path = write(tmp_path, jsonl(item(1), item(1)))
    # run_from_argv closes every connection on the way out, which would end the test database.
    monkeypatch.setattr(connections, "close_all", lambda: None)

    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "dataset_import", str(path),
                                   "--project", "acme", "--dataset", "data"])

    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert f"{path}: line 2, id: duplicate id 'q1' in this file" in err
    assert f"CommandError: {path}: 1 problem(s); nothing was stored" in err
    assert stored()["datasets"] == 0
