"""Streaming readers for dataset files: one row at a time, with the line it started on.

Neither reader holds the file in memory. Problems are yielded as RowProblem values, not raised,
so the importer can report every bad line (up to a cap) and still store nothing.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

BOM = codecs.BOM_UTF8
JSON_COLUMNS = ("labels", "judgments", "metadata")


@dataclass(frozen=True)
class RowProblem:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        if self.field:
            return f"{where}, {self.field}: {self.message}"
        return f"{where}: {self.message}"


Row = tuple[int, dict | RowProblem]


def guess_format(filename: str) -> str:
    lowered = filename.lower()
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if lowered.endswith(".csv"):
        return "csv"
    raise ValueError(f"{filename}: use a .jsonl or .csv file")


def iter_rows(stream: IO[bytes], fmt: str) -> Iterator[Row]:
    if fmt == "jsonl":
        yield from _iter_jsonl(stream)
    elif fmt == "csv":
        yield from _iter_csv(stream)
    else:
        raise ValueError(f"unknown format {fmt!r}")


def _iter_jsonl(stream: IO[bytes]) -> Iterator[Row]:
    seen_any = False
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, RowProblem(number, "", f"not UTF-8 (byte {exc.start + 1} of the line)")
            continue
        if not text.strip():
            continue
        seen_any = True
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, RowProblem(number, "", f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(row, dict):
            yield number, RowProblem(number, "", "each line must be one JSON object")
            continue
        yield number, row
    if not seen_any:
        yield 0, RowProblem(0, "", "the file is empty")


class _BadBytes(Exception):
    def __init__(self, line: int, exc: UnicodeDecodeError) -> None:
        super().__init__(line)
        self.line = line
        self.position = exc.start + 1


def _decoded_lines(stream: IO[bytes]) -> Iterator[str]:
    # Decode line by line (not through one TextIOWrapper) so a bad byte names its exact line;
    # csv.reader joins quoted newlines across these lines itself.
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _BadBytes(number, exc) from None


def _iter_csv(stream: IO[bytes]) -> Iterator[Row]:
    reader = csv.DictReader(_decoded_lines(stream), strict=True)
    try:
        header = reader.fieldnames
    except _BadBytes as bad:
        yield bad.line, RowProblem(bad.line, "", f"not UTF-8 (byte {bad.position} of the line)")
        return
    except csv.Error as exc:
        yield 1, RowProblem(1, "", f"unreadable CSV header: {exc}")
        return
    if not header:
        yield 0, RowProblem(0, "", "the file is empty")
        return
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        yield 1, RowProblem(1, "", f"duplicate columns: {', '.join(duplicates)}")
        return
    seen_any = False
    start = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except _BadBytes as bad:
            message = f"not UTF-8 (byte {bad.position} of the line); reading stopped here"
            yield bad.line, RowProblem(bad.line, "", message)
            return
        except csv.Error as exc:
            yield start, RowProblem(start, "", f"unreadable CSV: {exc}; reading stopped here")
            return
        line, start = start, reader.line_num + 1
        if not any((value or "").strip() for value in record.values() if isinstance(value, str)):
            continue
        seen_any = True
        if None in record:
            yield line, RowProblem(line, "", "more values than columns")
            continue
        row: dict = {}
        problem = None
        for column, value in record.items():
            if value is None:
                continue  # fewer values than columns: treated as missing
            if column in JSON_COLUMNS:
                if not value.strip():
                    continue
                try:
                    row[column] = json.loads(value)
                except json.JSONDecodeError as exc:
                    problem = RowProblem(line, column, f"invalid JSON: {exc.msg}")
                    break
            else:
                row[column] = value
        yield line, problem or row
    if not seen_any:
        yield 0, RowProblem(0, "", "the file has a header but no rows")
