"""The chunked line reader (apps/datasets/rows.py: iter_lines) and the per-line cap: lines come
out exactly as written whatever the chunk boundaries, and a line over the cap becomes a
line-numbered problem while the lines after it are still read (JSONL) or reading stops (CSV)."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.datasets.rows import RowProblem, iter_lines, iter_rows
from apps.intake.services import dataset_file_import


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30),
       st.booleans(), st.integers(min_value=1, max_value=17))
def test_lines_come_out_as_written_whatever_the_chunk_size(lines, final_newline, chunk):
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    got = [raw for _, raw in iter_lines(io.BytesIO(data), chunk=chunk)]
    assert b"".join(got) == data
    assert [n for n, _ in iter_lines(io.BytesIO(data), chunk=chunk)] == list(
        range(1, len(got) + 1))


@pytest.mark.parametrize("chunk", [1, 3, 7, 1024])
def test_a_line_over_the_cap_comes_as_none_and_the_rest_is_read(chunk):
    data = b"short\n" + b"x" * 11 + b"\nexact-ten!\n" + b"y" * 30
    got = list(iter_lines(io.BytesIO(data), max_line=10, chunk=chunk))
    assert got == [(1, b"short\n"), (2, None), (3, b"exact-ten!\n"), (4, None)]


def test_a_long_jsonl_line_is_a_line_numbered_problem():
    long_row = json.dumps({"id": "big", "prompt": "p", "response": "r" * 5000})
    data = "\n".join([json.dumps({"id": "a", "prompt": "p", "response": "r"}), long_row,
                      json.dumps({"id": "c", "prompt": "p", "response": "r"})]).encode()
    rows = list(iter_rows(io.BytesIO(data), "jsonl", max_line=1000))
    assert [line for line, _ in rows] == [1, 2, 3]
    problem = rows[1][1]
    assert isinstance(problem, RowProblem) and problem.line == 2
    assert "longer than" in problem.message and "IMPORT_MAX_LINE_MB" in problem.message
    assert rows[2][1]["id"] == "c"


def test_a_long_csv_line_stops_reading_with_its_line_number():
    data = b"id,prompt,response\na,p,r\nb,p," + b"r" * 5000 + b"\nc,p,r\n"
    rows = list(iter_rows(io.BytesIO(data), "csv", max_line=1000))
    assert rows[0][1]["id"] == "a"
    line, problem = rows[1]
    assert line == 3 and isinstance(problem, RowProblem)
    assert "reading stopped here" in problem.message
    assert len(rows) == 2


def test_a_csv_cell_above_csvs_own_default_limit_is_read_under_the_line_cap():
    data = b"id,prompt,response\na,p," + b"r" * 200_000 + b"\n"
    rows = list(iter_rows(io.BytesIO(data), "csv", max_line=1_000_000))
    assert len(rows[0][1]["response"]) == 200_000


@pytest.mark.django_db
def test_the_import_reports_the_long_line_and_stores_nothing(personas, settings):
    settings.IMPORT_MAX_LINE_MB = 1
    big = json.dumps({"id": "big", "prompt": "p", "response": "r" * (1024 * 1024 + 10)})
    data = (json.dumps({"id": "a", "prompt": "p", "response": "r"}) + "\n" + big + "\n").encode()
    result = dataset_file_import(project=personas.project, dataset_name="long",
                                 stream=io.BytesIO(data), fmt="jsonl")
    assert not result.ok
    assert [str(p) for p in result.problems] == [
        "line 2: the line is longer than 1 MB (IMPORT_MAX_LINE_MB)"]
    assert result.dataset is None
