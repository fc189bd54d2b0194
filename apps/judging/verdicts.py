"""Reading a judge's answer, and combining several answers into one verdict.

Standard library only: the exported reward.py embeds this module's source (with scales.py and
prompting.py), so the bundle parses and combines exactly as the app does.

Model output is untrusted. An answer becomes a value only when it holds a JSON object whose
"value" is one of the criterion's allowed values; anything else is a ParseError that keeps the
raw text, never a score. Whatever the answer holds (NUL bytes, lone surrogates, integers of
thousands of digits, NaN, nesting deeper than the parser goes, an array where the object should
be, megabytes of text), reading it either gives a verdict or raises ParseError: nothing else
escapes, so one odd answer is that call's outcome and never the batch's crash.
"""

from __future__ import annotations

import json
import re
from collections import Counter

from apps.rubrics import scales

_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA_RE = re.compile(r",\s*([}\]])")
# What PostgreSQL text cannot hold (NUL) and what UTF-8 cannot encode (lone surrogates).
_UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")
INCONSISTENT = "inconsistent"
_MAX_SCAN = 200
_MAX_INT_DIGITS = 30


def storable(text: str) -> str:
    """`text` with NUL and lone surrogates replaced by U+FFFD, so any database and any UTF-8
    file can hold it; everything else is kept as it came."""
    return _UNSTORABLE_RE.sub("\ufffd", text)


def _parse_int(digits: str):
    # Python refuses to build ints over 4,300 digits (a ValueError from inside json); no scale
    # has a level that long, so such a number is read as a float (inf) and refused by the scale.
    return int(digits) if len(digits) <= _MAX_INT_DIGITS else float(digits)


# strict=False: raw control characters inside strings (a newline in a rationale, even NUL)
# are read, not refused; storable() cleans what is kept.
_DECODER = json.JSONDecoder(parse_int=_parse_int, strict=False)
# ValueError covers JSONDecodeError and any conversion error; RecursionError deep nesting.
_DECODE_ERRORS = (ValueError, RecursionError)


def _loads(text: str):
    return _DECODER.decode(text)


class ParseError(ValueError):
    """The answer could not be read as a verdict; `kind` says why ("json" or "scale")."""

    def __init__(self, kind: str, message: str) -> None:
        message = storable(message)
        super().__init__(message if len(message) <= 500 else message[:500] + "…")
        self.kind = kind


def _candidates(text: str):
    yield text
    for match in _FENCE_RE.finditer(text):
        yield match.group(1)
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        yield text[start : end + 1]


def _embedded_objects(text: str) -> list[dict]:
    """Every JSON object that starts at a "{" outside an earlier one (prose with braces of its
    own, or an example object before the answer). At most _MAX_SCAN starts are tried."""
    decoder = _DECODER
    found = []
    position = text.find("{")
    tries = 0
    while position != -1 and tries < _MAX_SCAN:
        tries += 1
        try:
            data, end = decoder.raw_decode(text, position)
        except _DECODE_ERRORS:
            position = text.find("{", position + 1)
            continue
        if isinstance(data, dict):
            found.append(data)
        position = text.find("{", end)
    return found


def _not_an_object(data) -> ParseError:
    kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(data), "a number")
    return ParseError("json", f"the answer is {kind} in JSON, not an object with a verdict")


def extract_object(text: str) -> dict:
    """The JSON object in a model's answer: plain, fenced, wrapped in prose, trailing commas.

    An answer (or fenced block) that is itself valid JSON of another shape (`[{"value": 3}]`,
    `[3]`, `"3"`) is refused: the object inside an array is not the verdict the prompt asked for.
    """
    if not isinstance(text, str) or not text.strip():
        raise ParseError("json", "the answer is empty")
    text = text.strip()
    for candidate in _candidates(text):
        for attempt in (candidate, _TRAILING_COMMA_RE.sub(r"\1", candidate)):
            try:
                data = _loads(attempt)
            except _DECODE_ERRORS:
                continue
            if isinstance(data, dict):
                return data
            # The whole answer, or a fenced block, is JSON but not an object (the third
            # candidate starts with "{", so it is an object whenever it parses).
            raise _not_an_object(data)
    # Braces in the prose around the object: look for objects one by one. Two objects that
    # give different verdicts are a contradiction, not a verdict.
    for attempt in (text, _TRAILING_COMMA_RE.sub(r"\1", text)):
        objects = _embedded_objects(attempt)
        verdicts = [o for o in objects if "value" in o]
        try:
            distinct = {json.dumps(o["value"], sort_keys=True, default=str) for o in verdicts}
        except (ValueError, RecursionError):
            raise ParseError("json", "the verdict's value is not readable") from None
        if len(distinct) > 1:
            raise ParseError("json", "the answer gives more than one verdict")
        if verdicts:
            return verdicts[-1]
        if objects:
            return objects[0]
    raise ParseError("json", "no JSON object with a verdict in the answer")


def swap_value(value):
    """A pairwise answer given in order (B, A), put back in the item's terms."""
    return {"A": "B", "B": "A"}.get(value, value)


def parse_verdict(text: str, criterion: dict, *, swapped: bool = False) -> tuple[object, str]:
    """(value, rationale) from one answer, or ParseError. `swapped`: the (B, A) order was asked."""
    data = extract_object(text)
    if "value" not in data:
        raise ParseError("json", 'the JSON object has no "value"')
    try:
        value = scales.coerce_value(criterion["scale"], data["value"])
    except ValueError as exc:
        raise ParseError("scale", str(exc)) from None
    rationale = data.get("rationale", "")
    if not isinstance(rationale, str):
        try:
            rationale = json.dumps(rationale, ensure_ascii=False)
        except (ValueError, RecursionError):
            rationale = "(the rationale was not text and could not be shown)"
    if swapped:
        value = swap_value(value)
    return value, storable(rationale[:4000])


def pairwise_sample_value(ab, ba):
    """One sample of a pairwise judge, asked in both orders: the answer if both orders agree,
    else "inconsistent" (the order decided it, not the responses)."""
    return ab if ab == ba else INCONSISTENT


def combine(scale: dict, values: list) -> tuple[object, float | None, float | None, str]:
    """K sampled values -> (value, mean, spread, flag).

    Ordinal and binary: the mean rounded to the nearest level (halves up), spread = population
    standard deviation. Categories and pairwise: the majority, spread = share of samples that
    disagree with it; a tie between classes goes to "tie" on pairwise scales and to the first
    class in scale order otherwise, flagged "split". Pairwise "inconsistent" samples count as
    tie and flag the verdict.
    """
    if not values:
        raise ValueError("no values to combine")
    kind = scale["type"]
    if kind in (scales.BINARY, scales.ORDINAL):
        numbers = [float(v) for v in values]
        mean = sum(numbers) / len(numbers)
        spread = (sum((x - mean) ** 2 for x in numbers) / len(numbers)) ** 0.5
        allowed = scales.allowed_values(scale)
        value = min(allowed, key=lambda level: (abs(level - mean), -level))
        return value, mean, spread, ""
    flag = ""
    if kind == scales.PAIRWISE and INCONSISTENT in values:
        flag = INCONSISTENT
        values = ["tie" if v == INCONSISTENT else v for v in values]
    counts = Counter(values)
    top = max(counts.values())
    leaders = [v for v in scales.allowed_values(scale) if counts.get(v) == top]
    if len(leaders) == 1:
        value = leaders[0]
    else:
        value = "tie" if kind == scales.PAIRWISE else leaders[0]
        flag = flag or "split"
    spread = 1 - counts[value] / len(values) if value in counts else 1.0
    return value, None, spread, flag
