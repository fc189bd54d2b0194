"""Streaming readers for dataset files: one row at a time, with the line it started on.

Neither reader holds the file in memory. Problems are yielded as RowProblem values, not raised,
so the importer can report every bad line (up to a cap) and still store nothing.

Lines come from `iter_lines`, our own chunked reader: iterating a Django File (or a BufferedReader
over a pipe) rebuilds a long line from 64 KB pieces by repeated concatenation, which is quadratic
in the line's length (a 50 MB line took 46 s). iter_lines keeps the pieces in a list and joins
once, and stops collecting a line at `max_line` bytes: the rest of it is read and dropped, and the
line becomes a line-numbered problem instead of a memory spike.
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
DEFAULT_MAX_LINE = 10 * 1024 * 1024
READ_CHUNK = 1024 * 1024
JSON_COLUMNS = ("labels", "judgments", "metadata")
# JSON may spell a NUL or half of a surrogate pair as an escape; PostgreSQL stores neither (text
# and jsonb refuse NUL; psycopg cannot encode a lone surrogate), so without this check such a row
# fails at INSERT time with a server error instead of a line-numbered problem.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection). OWASP's
# advice: write such a cell with a leading apostrophe, which spreadsheets show as text. Our CSV
# reader takes the apostrophe off again before one of these, so exports round-trip.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell_out(text: str) -> str:
    """A text cell as a CSV export writes it: formula-looking cells neutralised."""
    if text and text.startswith(FORMULA_START):
        return "'" + text
    return text


def csv_cell_in(text: str) -> str:
    """A text cell as the CSV reader takes it: the export's neutralising apostrophe removed."""
    if len(text) > 1 and text[0] == "'" and text[1:].startswith(FORMULA_START):
        return text[1:]
    return text


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


def json_text_problem(value) -> str | None:
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


def iter_lines(stream: IO[bytes], *, max_line: int = DEFAULT_MAX_LINE,
               chunk: int = READ_CHUNK) -> Iterator[tuple[int, bytes | None]]:
    """(line number, the line's bytes with its newline) for each line, in linear time; a line
    longer than `max_line` bytes (its newline not counted) comes as (number, None)."""
    number = 0
    parts: list[bytes] = []
    size = 0
    too_long = False
    while True:
        block = stream.read(chunk)
        if not block:
            break
        start = 0
        while True:
            end = block.find(b"\n", start)
            if end < 0:
                piece = block[start:]
                if piece and not too_long:
                    size += len(piece)
                    if size > max_line:
                        too_long, parts = True, []
                    else:
                        parts.append(piece)
                break
            number += 1
            piece = block[start: end + 1]
            if too_long or size + len(piece) - 1 > max_line:
                yield number, None
            elif parts:
                parts.append(piece)
                yield number, b"".join(parts)
            else:
                yield number, piece
            parts, size, too_long = [], 0, False
            start = end + 1
    if parts or too_long:
        yield number + 1, None if too_long else b"".join(parts)


def _too_long(number: int, max_line: int) -> RowProblem:
    return RowProblem(number, "", f"the line is longer than {max_line / 1048576:g} MB "
                                  "(IMPORT_MAX_LINE_MB)")


def iter_rows(stream: IO[bytes], fmt: str, *, max_line: int = DEFAULT_MAX_LINE) -> Iterator[Row]:
    if fmt == "jsonl":
        yield from _iter_jsonl(stream, max_line)
    elif fmt == "csv":
        yield from _iter_csv(stream, max_line)
    else:
        raise ValueError(f"unknown format {fmt!r}")


def _iter_jsonl(stream: IO[bytes], max_line: int) -> Iterator[Row]:
    seen_any = False
    for number, raw in iter_lines(stream, max_line=max_line):
        if raw is None:
            seen_any = True
            yield number, _too_long(number, max_line)
            continue
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


class _LineTooLong(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


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

    def __init__(self, stream: IO[bytes], max_line: int) -> None:
        self._raw = iter_lines(stream, max_line=max_line)
        self.number = 0
        self.record_start = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        self.number, raw = next(self._raw)
        if raw is None:
            raise _LineTooLong(self.number)
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


def _iter_csv(stream: IO[bytes], max_line: int) -> Iterator[Row]:
    lines = _Lines(stream, max_line)
    # csv's own field limit (128 KB) would refuse a long cell that the line cap allows.
    csv.field_size_limit(max(csv.field_size_limit(), max_line))
    reader = csv.DictReader(lines, strict=True)
    try:
        header = reader.fieldnames
    except _LineTooLong as long:
        yield long.line, _too_long(long.line, max_line)
        return
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
        except _LineTooLong as long:
            problem = _too_long(long.line, max_line)
            yield long.line, RowProblem(long.line, "", f"{problem.message}; reading stopped here")
            return
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
                row[column] = csv_cell_in(value)
        yield line, problem or _unstorable(row, line) or row
    if not seen_any:
        yield 0, RowProblem(0, "", "the file has a header but no rows")
