"""Criterion scales: the allowed values, how a value becomes a score, and how a raw answer is
read back.

Standard library only: the exported reward.py embeds this module's source, so the app and the
bundle read and score verdicts with the same code.

A scale is a dict `{"type": T, "levels": [{"value": V, "label": L, "anchor": A, "score": S}]}`:
- binary: values 0 and 1 (label defaults No / Yes), score = value;
- ordinal: values 1..N in order, a written anchor for every level, score = (v - 1) / (N - 1);
- categorical: string values, each with a score in [0, 1] when the criterion carries weight;
- pairwise: values "A", "B", "tie"; score from A's side: A 1, tie 0.5, B 0.
"""

from __future__ import annotations

import math
import re
import reprlib
from fractions import Fraction

BINARY = "binary"
ORDINAL = "ordinal"
CATEGORICAL = "categorical"
PAIRWISE = "pairwise"
SCALE_TYPES = (BINARY, ORDINAL, CATEGORICAL, PAIRWISE)
SCALE_CHOICES = [
    (BINARY, "Binary (yes / no)"),
    (ORDINAL, "Ordinal (1..N)"),
    (CATEGORICAL, "Categories"),
    (PAIRWISE, "Preference (A / B / tie)"),
]
PAIRWISE_VALUES = ("A", "B", "tie")
_CATEGORY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\- ]{0,39}$")
_SCALE_FIELDS = {"type", "levels"}
_LEVEL_FIELDS = {"value", "label", "anchor"}


def allowed_values(scale: dict) -> list:
    if scale["type"] == PAIRWISE:
        return list(PAIRWISE_VALUES)
    return [level["value"] for level in scale["levels"]]


def is_numeric(scale: dict) -> bool:
    return scale["type"] in (BINARY, ORDINAL)


def scale_signature(scale: dict) -> str:
    """Identity of a scale for human labels: type and values, not the wording of anchors.

    Two versions whose criterion keeps its key and signature share that criterion's labels.
    """
    values = ",".join(str(v) for v in allowed_values(scale))
    return f"{scale['type']}:{values}"


def exact(number) -> Fraction:
    """A weight, score or threshold as the number it was written as: 0.1 is 1/10 (from the
    float's shortest decimal form), not the binary fraction nearest to it. Exact arithmetic on
    these keeps equal rewards equal and 3/5 >= 0.6 true."""
    if isinstance(number, Fraction):
        return number
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise TypeError(f"{_brief(number)} is not a number")
    if isinstance(number, int):
        return Fraction(number)
    if not math.isfinite(number):
        raise ValueError(f"{number!r} is not a finite number")
    return Fraction(repr(number))


def score_fraction(scale: dict, value) -> Fraction:
    """The reward contribution in [0, 1] of one value on this scale, exactly."""
    kind = scale["type"]
    if kind == BINARY:
        return Fraction(int(value))
    if kind == ORDINAL:
        values = allowed_values(scale)
        low, high = min(values), max(values)
        return Fraction(0) if high == low else Fraction(int(value) - low, high - low)
    if kind == PAIRWISE:
        return {"A": Fraction(1), "tie": Fraction(1, 2), "B": Fraction(0)}[value]
    for level in scale["levels"]:
        if level["value"] == value:
            return exact(level.get("score") or 0)
    raise ValueError(f"{value!r} is not a level of this scale")


def level_score(scale: dict, value) -> float:
    """The reward contribution in [0, 1] of one value on this scale (score_fraction as a
    float, for display)."""
    return float(score_fraction(scale, value))


_BRIEF = reprlib.Repr()
_BRIEF.maxstring = 60
_BRIEF.maxother = 60
_BRIEF.maxlevel = 2
_BRIEF.maxlist = _BRIEF.maxdict = 4


def _brief(raw) -> str:
    """A short repr for error messages: a 10 MB string or a 5,000-digit number is named by its
    start, never copied whole (nor converted: Python refuses int -> str over 4,300 digits)."""
    if isinstance(raw, int) and not isinstance(raw, bool) and raw.bit_length() > 100:
        return "an integer of more than 30 digits"
    try:
        return _BRIEF.repr(raw)
    except (ValueError, RecursionError):
        return f"a {type(raw).__name__}"


def coerce_value(scale: dict, raw):
    """Read a raw answer as a value of the scale, or raise ValueError saying why.

    Lenient about form ("4", 4.0, "Tie", "a"), strict about content: anything that is not
    exactly one of the allowed values is refused, never rounded into the scale. Whatever `raw`
    is (a huge number, NaN, a nested list, text with NUL bytes), the only exception is a
    ValueError with a short message.
    """
    try:
        return _coerce(scale, raw)
    except _Refused:
        raise
    except (ValueError, OverflowError, TypeError, RecursionError):
        raise _Refused(f"{_brief(raw)} is not one of {allowed_values(scale)}") from None


class _Refused(ValueError):
    """coerce_value's own refusal (its message is already short and says why)."""


def _coerce(scale: dict, raw):
    kind = scale["type"]
    allowed = allowed_values(scale)
    if kind in (BINARY, ORDINAL):
        if isinstance(raw, bool):
            if kind != BINARY:  # JSON true is yes/no, not level 1 of an ordinal scale
                raise _Refused(f"{_brief(raw)} is not one of the levels {allowed}")
            raw = int(raw)
        if isinstance(raw, str):
            text = raw.strip().lower()
            if kind == BINARY and text in ("yes", "true", "pass"):
                text = "1"
            elif kind == BINARY and text in ("no", "false", "fail"):
                text = "0"
            try:
                raw = float(text)
            except ValueError:
                raise _Refused(f"{_brief(raw)} is not a number; allowed: {allowed}") from None
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            if isinstance(raw, float) and (math.isnan(raw) or not raw.is_integer()):
                raise _Refused(f"{_brief(raw)} is not one of the levels {allowed}")
            value = int(raw)
            if value in allowed:
                return value
        raise _Refused(f"{_brief(raw)} is outside the scale; allowed: {allowed}")
    if not isinstance(raw, str):
        raise _Refused(f"{_brief(raw)} is not one of {allowed}")
    text = raw.strip()
    for value in allowed:
        if text.lower() == str(value).lower():
            return value
    raise _Refused(f"{_brief(raw)} is not one of {allowed}")


def value_to_text(value) -> str:
    """Canonical text form used to store a value (labels and verdicts are stored as text)."""
    return str(value)


def text_to_value(scale: dict, text: str):
    return coerce_value(scale, text)


def default_levels(kind: str, n: int = 5) -> list[dict]:
    if kind == BINARY:
        return [
            {"value": 0, "label": "No", "anchor": ""},
            {"value": 1, "label": "Yes", "anchor": ""},
        ]
    if kind == ORDINAL:
        return [{"value": i, "label": "", "anchor": ""} for i in range(1, n + 1)]
    if kind == PAIRWISE:
        return [
            {"value": "A", "label": "A is better", "anchor": "Response A is better."},
            {"value": "B", "label": "B is better", "anchor": "Response B is better."},
            {"value": "tie", "label": "Tie", "anchor": "Neither is clearly better."},
        ]
    return [
        {"value": "good", "label": "Good", "anchor": "", "score": 1.0},
        {"value": "bad", "label": "Bad", "anchor": "", "score": 0.0},
    ]


def scale_errors(scale, *, path: str, weighted: bool) -> list[str]:
    """Every problem with a scale, each prefixed with its field path."""
    if not isinstance(scale, dict):
        return [f"{path}: must be a mapping with 'type' and 'levels'"]
    kind = scale.get("type")
    if kind not in SCALE_TYPES:
        return [f"{path}.type: must be one of {', '.join(SCALE_TYPES)}"]
    levels = scale.get("levels")
    if not isinstance(levels, list) or not levels:
        return [f"{path}.levels: required, a list of levels"]
    errors: list[str] = [
        f"{path}.{name}: unknown field" for name in sorted(map(str, set(scale) - _SCALE_FIELDS))
    ]
    level_fields = _LEVEL_FIELDS | ({"score"} if kind == CATEGORICAL else set())
    for i, level in enumerate(levels):
        where = f"{path}.levels[{i}]"
        if not isinstance(level, dict):
            errors.append(f"{where}: must be a mapping with value, label and anchor")
            continue
        for name in sorted(map(str, set(level) - level_fields)):
            # A score on an ordinal or binary level would be silently ignored: say so instead.
            why = "only categories carry a score" if name == "score" else "unknown field"
            errors.append(f"{where}.{name}: {why}")
        if "value" not in level:
            errors.append(f"{where}.value: required")
        elif kind in (BINARY, ORDINAL) and isinstance(level["value"], bool):
            # YAML reads yes/no/true/false as booleans; True == 1 would pass the checks below
            # but give the scale another signature (and its labels another identity).
            errors.append(f"{where}.value: a number, not {str(level['value']).lower()}")
        anchor = level.get("anchor")
        if kind in (ORDINAL, BINARY) and (not isinstance(anchor, str) or not anchor.strip()):
            errors.append(f"{where}.anchor: required")
        for field in ("label", "anchor"):
            if field in level and not isinstance(level[field], str):
                errors.append(f"{where}.{field}: must be text")
    if errors:
        return errors
    values = [level["value"] for level in levels]
    if kind == BINARY and values != [0, 1]:
        errors.append(f"{path}.levels: a binary scale has exactly the values 0 and 1, in order")
    elif kind == ORDINAL:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            errors.append(f"{path}.levels: ordinal values must be whole numbers")
        elif values != list(range(1, len(values) + 1)) or len(values) < 2:
            errors.append(f"{path}.levels: ordinal values must be 1, 2, ..., N with N >= 2")
        elif len(values) > 10:
            errors.append(f"{path}.levels: at most 10 ordinal levels")
    elif kind == PAIRWISE and values != list(PAIRWISE_VALUES):
        errors.append(f"{path}.levels: a preference scale has the values A, B, tie, in order")
    elif kind == CATEGORICAL:
        if len(values) < 2:
            errors.append(f"{path}.levels: at least two categories")
        for i, value in enumerate(values):
            if not isinstance(value, str) or not _CATEGORY_RE.fullmatch(value):
                errors.append(
                    f"{path}.levels[{i}].value: a category is 1-40 letters, digits, - or _"
                )
        if len(set(map(str, values))) != len(values):
            errors.append(f"{path}.levels: categories must be distinct")
        for i, level in enumerate(levels):
            score = level.get("score")
            if score is None and weighted:
                errors.append(f"{path}.levels[{i}].score: required when the criterion has weight")
            elif score is not None and (
                not isinstance(score, int | float)
                or isinstance(score, bool)
                or not 0 <= score <= 1
            ):
                errors.append(f"{path}.levels[{i}].score: a number from 0 to 1")
    return errors
