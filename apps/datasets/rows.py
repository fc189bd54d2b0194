"""Streaming readers for dataset files: one row at a time, with the line it started on.

Neither reader holds the file in memory. Problems are yielded as RowProblem values, not raised,
so the importer can report every bad line (up to a cap) and still store nothing.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

BOM = codecs.BOM_UTF8
JSON_COLUMNS = ("labels", "judgments", "metadata")
# JSON may spell a NUL or half of a surrogate pair as an escape; PostgreSQL stores neither (text
# and jsonb refuse NUL; psycopg cannot encode a lone surrogate), so without this check such a row
# fails at INSERT time with a server error instead of a line-numbered problem.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


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


class _NotJson(ValueError):
    pass


def _no_constants(name: str):
    # Python's json reads NaN and Infinity, which are not JSON; PostgreSQL's jsonb refuses them.
    raise _NotJson(f"{name} is not a JSON value")


def _loads(text: str):
    """json.loads, strict about NaN/Infinity; raises ValueError with a message for the user."""
    try:
        return json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise _NotJson(f"{exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise _NotJson("nested too deeply") from None
    except _NotJson:
        raise
    except ValueError as exc:
        # Python refuses to read an integer of more than 4,300 digits (int_max_str_digits).
        raise _NotJson(f"a number too long to read ({str(exc)[:60]})") from None


def _text_problem(value) -> str | None:
    """Why a parsed value cannot be stored as text, looking inside lists and objects."""
    if isinstance(value, str):
        if "\x00" in value:
            return "contains a NUL character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate (\\ud800-\\udfff)"
        return None
    if isinstance(value, dict):
        for key, inner in value.items():
            found = _text_problem(key) or _text_problem(inner)
            if found:
                return found
    elif isinstance(value, list):
        for inner in value:
            found = _text_problem(inner)
            if found:
                return found
    return None


def text_problem(value) -> str | None:
    """Why a parsed value (any JSON shape) cannot be stored as text, or None. Also for other
    importers of JSON (labels from other tools)."""
    try:
        return _text_problem(value)
    except RecursionError:
        return "nested too deeply"


def _unstorable(row: dict, line: int) -> RowProblem | None:
    for key, value in row.items():
        try:
            found = _text_problem(key) or _text_problem(value)
        except RecursionError:
            found = "nested too deeply"
        if found:
            return RowProblem(line, key, found)
    return None


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
            row = _loads(text)
        except _NotJson as exc:
            yield number, RowProblem(number, "", f"invalid JSON: {exc}")
            continue
        if not isinstance(row, dict):
            yield number, RowProblem(number, "", "each line must be one JSON object")
            continue
        # Walk the row only when the line spells a suspect escape: most lines never do.
        if _SUSPECT_ESCAPE.search(text):
            bad = _unstorable(row, number)
            if bad is not None:
                yield number, bad
                continue
        yield number, row
    if not seen_any:
        yield 0, RowProblem(0, "", "the file is empty")


class _BadBytes(Exception):
    def __init__(self, line: int, exc: UnicodeDecodeError) -> None:
        super().__init__(line)
        self.line = line
        self.position = exc.start + 1


class _Lines:
    """Decoded lines for csv.reader, noting the line on which each record starts.

    Decoded line by line (not through one TextIOWrapper) so a bad byte names its exact line;
    csv.reader joins quoted newlines across these lines itself. reader.line_num only gives the
    last line of a record, which is wrong for records with quoted newlines or after blank lines.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._raw = iter(stream)
        self.number = 0
        self.record_start = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = next(self._raw)
        self.number += 1
        if self.number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _BadBytes(self.number, exc) from None
        if not self.record_start and text.strip("\r\n"):
            self.record_start = self.number
        return text

    def take_start(self) -> int:
        start, self.record_start = self.record_start, 0
        return start


def _iter_csv(stream: IO[bytes]) -> Iterator[Row]:
    lines = _Lines(stream)
    reader = csv.DictReader(lines, strict=True)
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
    lines.take_start()
    seen_any = False
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
            line = lines.take_start() or lines.number
            yield line, RowProblem(line, "", f"unreadable CSV: {exc}; reading stopped here")
            return
        line = lines.take_start() or reader.line_num
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
                    row[column] = _loads(value)
                except _NotJson as exc:
                    problem = RowProblem(line, column, f"invalid JSON: {exc}")
                    break
            else:
                row[column] = value
        yield line, problem or _unstorable(row, line) or row
    if not seen_any:
        yield 0, RowProblem(0, "", "the file has a header but no rows")
