"""Labels out: session and dataset exports in the dataset row format, read back by the dataset
importer (apps.intake.services.dataset_file_import) as the same labels."""

from __future__ import annotations

import io
import json

import pytest

from apps.intake.services import dataset_file_import
from apps.labeling.models import HumanLabel, LabelSource
from tests.labeling.helpers import label_one, make_session, url

pytestmark = pytest.mark.django_db


def _download(response) -> bytes:
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def _labels(dataset) -> set:
    return set(HumanLabel.objects.filter(item__dataset=dataset).values_list(
        "item__external_id", "annotator", "criterion_key", "scale_signature", "value",
        "comment"))


@pytest.fixture
def labelled(personas):
    session = make_session(personas.project, assignees=[personas.labeller, personas.editor],
                           items=4, overlap=2)
    label_one(session, personas.labeller, {"correct": 1, "safe": 0}, comment='says "no", twice')
    label_one(session, personas.labeller, {"correct": 3, "safe": 1}, comment="line one\nline 2")
    label_one(session, personas.editor, {"correct": 2, "safe": 1})
    return session


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_session_export_round_trips_through_the_importer(personas, labelled, fmt):
    data = _download(personas.client("owner").get(url("session_export", labelled) +
                                                  f"?format={fmt}"))
    result = dataset_file_import(project=personas.project, dataset_name=f"copy-{fmt}",
                                 stream=io.BytesIO(data), fmt=fmt,
                                 rubric_version=labelled.rubric_version)
    assert result.ok, [str(p) for p in result.problems]
    assert result.items == 2 and result.labels == 6
    assert _labels(result.dataset) == _labels(labelled.dataset)


def test_rows_carry_annotator_time_and_shown_order(personas, labelled):
    data = _download(personas.client("owner").get(url("session_export", labelled)))
    rows = [json.loads(line) for line in data.splitlines()]
    assert [row["id"] for row in rows] == ["i0", "i1"]
    first = rows[0]
    assert set(first) == {"id", "prompt", "response", "reference", "metadata", "labels"}
    label = first["labels"][0]
    assert set(label) == {"annotator", "criterion", "value", "comment", "time", "shown_order",
                          "round"}
    assert label["round"] == 1
    assert isinstance(label["value"], int) and label["time"].startswith("20")


def test_a_pairwise_export_says_what_was_shown_where(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=3,
                           pairwise=True)
    claim, _ = label_one(session, personas.labeller, {"overall": "B"})
    data = _download(personas.client("labeller").get(url("session_export", session)))
    row = json.loads(data.splitlines()[0])
    assert set(row) >= {"response_a", "response_b"} and "response" not in row
    assert row["labels"][0]["value"] == "B"
    assert row["labels"][0]["shown_order"] == claim.shown_order in ("AB", "BA")
    result = dataset_file_import(project=personas.project, dataset_name="pairs-copy",
                                 stream=io.BytesIO(data), fmt="jsonl",
                                 rubric_version=session.rubric_version)
    assert result.ok and result.labels == 1


def test_a_dataset_export_holds_imported_and_screen_labels(personas, labelled):
    item = labelled.dataset.items.get(external_id="i3")
    HumanLabel.objects.create(item=item, criterion_key="safe", scale_signature="binary:0,1",
                              annotator="imported-kim", value="1", source=LabelSource.IMPORT)
    data = _download(personas.client("editor").get(
        url("dataset_labels_export", dataset_id=labelled.dataset_id)))
    rows = [json.loads(line) for line in data.splitlines()]
    assert [row["id"] for row in rows] == ["i0", "i1", "i3"]
    assert rows[2]["labels"] == [{"annotator": "imported-kim", "criterion": "safe", "value": 1,
                                  "comment": "", "time": rows[2]["labels"][0]["time"],
                                  "shown_order": "", "round": 1}]
    result = dataset_file_import(project=personas.project, dataset_name="all-copy",
                                 stream=io.BytesIO(data), fmt="jsonl",
                                 rubric_version=labelled.rubric_version)
    assert result.ok and result.labels == 7
