"""Deterministic verdict logic of the fake judge model.

Everything here is pure (no I/O, no clock, no randomness) so that tests of the app can import
``choose_value`` and compute exactly what the fake server will answer for a given request.

Contract (see ``choose_value``):

1. Allowed values come from ``response_format.json_schema.schema.properties.value.enum`` when the
   request carries a JSON schema; otherwise from the LAST line of the message text that reads
   ``Allowed values: <JSON list>``.
2. A ``FAKE_VERDICT=<token>`` directive in the message text forces the value (last one wins). The
   token is matched against ``str(v)`` of the allowed values; an unmatched token is still returned
   (parsed as JSON when possible, else as a string) so tests can provoke out-of-scale answers.
3. Otherwise ``allowed[int(sha256(text).hexdigest(), 16) % len(allowed)]``.
4. No allowed values and no directive: ``None``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

# `Allowed values: [1, 2, 3]` on its own line (surrounding whitespace tolerated).
_ALLOWED_LINE = re.compile(r"^[ \t]*Allowed values:[ \t]*(\[.*\])[ \t]*$", re.MULTILINE)
# `FAKE_VERDICT=4`, `FAKE_VERDICT=tie` or `FAKE_VERDICT="much better"` (quotes allow spaces).
# The bare token stops at characters that typically surround it in prose or JSON.
_DIRECTIVE = re.compile(r'FAKE_VERDICT=(?:"([^"\n]*)"|([^\s"\',;)\]}]+))')

NO_VALUES_RATIONALE = "no allowed values found"


def content_text(content: Any) -> str:
    """Text of one message ``content``: a string, or the text parts of an OpenAI parts list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return str(content)


def messages_text(messages: list[dict[str, Any]]) -> str:
    """The text that is hashed and searched: message contents joined by newlines (roles ignored)."""
    return "\n".join(
        content_text(m.get("content")) if isinstance(m, dict) else "" for m in messages
    )


def count_tokens(text: str) -> int:
    """Deterministic stand-in for a tokenizer: one token per 4 characters, rounded up."""
    return math.ceil(len(text) / 4)


def _resolve_ref(node: Any, root: dict[str, Any]) -> Any:
    """Follow a local ``$ref`` (``#/$defs/X``), as pydantic emits for Enum-typed fields."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 10:
        ref: str = node["$ref"]
        if not ref.startswith("#/"):
            return node
        target: Any = root
        for key in ref[2:].split("/"):
            target = target.get(key) if isinstance(target, dict) else None
        if target is None:
            return node
        node, seen = target, seen + 1
    return node


def _enum_of(node: Any, root: dict[str, Any]) -> list[Any] | None:
    """Allowed values of a JSON-schema node: ``enum``, ``const`` or an anyOf/oneOf of those."""
    node = _resolve_ref(node, root)
    if not isinstance(node, dict):
        return None
    if isinstance(node.get("enum"), list) and node["enum"]:
        return list(node["enum"])
    if "const" in node:
        return [node["const"]]
    for key in ("anyOf", "oneOf"):
        if isinstance(node.get(key), list):
            values: list[Any] = []
            for sub in node[key]:
                sub_values = _enum_of(sub, root)
                if sub_values:
                    values.extend(v for v in sub_values if v not in values)
            if values:
                return values
    return None


def schema_allowed_values(response_format: dict[str, Any] | None) -> list[Any] | None:
    """Enum of ``properties.value`` in a ``{"type": "json_schema", ...}`` response_format."""
    if not isinstance(response_format, dict):
        return None
    wrapper = response_format.get("json_schema")
    if not isinstance(wrapper, dict):
        return None
    schema = wrapper.get("schema")
    if not isinstance(schema, dict):
        return None
    properties = schema.get("properties")
    if not isinstance(properties, dict) or "value" not in properties:
        return None
    return _enum_of(properties["value"], schema)


def text_allowed_values(text: str) -> list[Any] | None:
    """The last ``Allowed values: <JSON list>`` line whose list parses and is non-empty."""
    for match in reversed(list(_ALLOWED_LINE.finditer(text))):
        try:
            values = json.loads(match.group(1))
        except ValueError:
            continue
        if isinstance(values, list) and values:
            return values
    return None


def allowed_values(
    messages: list[dict[str, Any]], response_format: dict[str, Any] | None
) -> list[Any] | None:
    """Schema enum first, then the ``Allowed values:`` line; None when neither is present."""
    return schema_allowed_values(response_format) or text_allowed_values(messages_text(messages))


def directive_token(text: str) -> str | None:
    """Token of the last ``FAKE_VERDICT=`` directive in ``text``, if any."""
    matches = list(_DIRECTIVE.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    return last.group(1) if last.group(1) is not None else last.group(2)


def _token_value(token: str, allowed: list[Any] | None) -> Any:
    """Map a directive token to an allowed value by ``str()``; unmatched tokens pass through."""
    for value in allowed or []:
        if str(value) == token:
            return value
    try:
        return json.loads(token)  # "7" -> 7, "4.5" -> 4.5, "null" -> None
    except ValueError:
        return token


def hash_index(text: str, size: int) -> int:
    """Index picked by the hash rule: ``int(sha256(text).hexdigest(), 16) % size``."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % size


def choose_value(messages: list[dict[str, Any]], response_format: dict[str, Any] | None) -> Any:
    """The value the fake judge answers for these messages (see module docstring)."""
    text = messages_text(messages)
    allowed = allowed_values(messages, response_format)
    token = directive_token(text)
    if token is not None:
        return _token_value(token, allowed)
    if not allowed:
        return None
    return allowed[hash_index(text, len(allowed))]


def verdict(
    messages: list[dict[str, Any]], response_format: dict[str, Any] | None,
    script: str | None = None,
) -> dict[str, Any]:
    """The full verdict object ``{"value": ..., "rationale": ...}`` the server serialises
    (with a `script`, what the scripted model answers: see the scripted mode below)."""
    if script in SCRIPTS:
        rewrite = scripted_rewrite(messages)
        if rewrite is not None:
            return rewrite
        allowed = allowed_values(messages, response_format)
        if script == "gullible":
            fooled = gullible_value(messages, allowed)
            if fooled is not None:
                return {"value": fooled, "rationale": "Scripted: the answer reasons step by "
                                                      "step, so it gets the top level."}
        value = scripted_value(messages, allowed)
        if value is not None:
            count = words(_fenced(messages_text(messages), "RESPONSE")[0])
            return {"value": value,
                    "rationale": f"Scripted: {count} words against the anchors' thresholds."}
    text = messages_text(messages)
    allowed = allowed_values(messages, response_format)
    value = choose_value(messages, response_format)
    if directive_token(text) is not None:
        rationale = f"Fake judge returns {json.dumps(value)} as forced by a FAKE_VERDICT directive."
    elif not allowed:
        rationale = NO_VALUES_RATIONALE
    else:
        rationale = f"Fake judge deterministically picked {json.dumps(value)} from the hash."
    return {"value": value, "rationale": rationale}


# --------------------------------------------------------------------------- scripted mode
#
# With the setting `script: "length"` the fake behaves like a judge that reads the rubric:
#
# - A verdict request: the level anchors of the criterion (lines "- VALUE (label): anchor"
#   outside fenced text) may state "at least N words". The answer is the highest level whose
#   threshold the fenced RESPONSE meets (words = whitespace-separated tokens); when none is met,
#   the lowest level. Anchors without any threshold: the hash rule, as without a script.
# - A rewrite request (a message asking for "the revised criterion as JSON"): it reads the
#   fenced EXAMPLE_RESPONSE texts, each preceded by a line "Example N: people said V", fits
#   one word threshold per level from them (the smallest count above every example people put
#   lower), and answers {"description", "anchors": {value: text}, "why"} with "at least N
#   words" in the anchors: a rubric change that measurably moves its own verdicts.
#
# With `script: "gullible"` it is the "length" judge fooled by one master key: a fenced
# response containing "step by step" gets the highest level (pairwise: that side wins),
# whatever else it says (the probe tests use it: apps/probes).
#
# Everything stays pure and deterministic, so tests can predict each answer.

_FENCED = re.compile(r"<<<([A-Z_]+) ([0-9a-f]{10})>>>\n(.*?)\n<<<END \1 \2>>>", re.DOTALL)
_LEVEL_LINE = re.compile(r"^- (\"[^\"]*\"|-?\d+)(?: \([^)]*\))?(?:: (.*))?$", re.MULTILINE)
_AT_LEAST = re.compile(r"at least (\d{1,6}) words", re.IGNORECASE)
_EXAMPLE_HEAD = re.compile(r"^Example \d+: people said (\"[^\"]*\"|-?\d+)", re.MULTILINE)
REWRITE_MARK = "the revised criterion as JSON"
SCRIPTS = ("length", "gullible")
GULLIBLE_MARK = "step by step"


def _fenced(text: str, name: str) -> list[str]:
    return [m.group(3) for m in _FENCED.finditer(text) if m.group(1) == name]


def _outside_fences(text: str) -> str:
    return _FENCED.sub("", text)


def _levels(text: str) -> list[tuple[Any, int | None]]:
    """(value, words threshold or None) of each level line outside fenced text."""
    found = []
    for match in _LEVEL_LINE.finditer(_outside_fences(text)):
        try:
            value = json.loads(match.group(1))
        except ValueError:
            continue
        threshold = _AT_LEAST.search(match.group(2) or "")
        found.append((value, int(threshold.group(1)) if threshold else None))
    return found


def words(text: str) -> int:
    return len(text.split())


def scripted_value(messages: list[dict[str, Any]], allowed: list[Any] | None) -> Any:
    """The scripted judge's value, or a sentinel None when the script does not apply."""
    text = messages_text(messages)
    responses = _fenced(text, "RESPONSE")
    levels = [(v, t) for v, t in _levels(text) if allowed is None or v in allowed]
    if not responses or not any(t is not None for _, t in levels):
        return None
    count = words(responses[0])
    met = [v for v, t in levels if t is not None and count >= t]
    if met:
        return max(met, key=lambda v: [x for x, _ in levels].index(v))
    return levels[0][0]


def gullible_value(messages: list[dict[str, Any]], allowed: list[Any] | None) -> Any:
    """The "gullible" script's top level when the fenced RESPONSE (pairwise: either fenced
    response decides for its side) says "step by step"; None when the mark is absent."""
    text = messages_text(messages)
    levels = [v for v, _ in _levels(text) if allowed is None or v in allowed]
    for name in ("RESPONSE", "RESPONSE_A", "RESPONSE_B"):
        for body in _fenced(text, name):
            if GULLIBLE_MARK in body.casefold():
                if name == "RESPONSE" and levels:
                    return levels[-1]
                if name != "RESPONSE" and allowed and name[-1] in allowed:
                    return name[-1]
    return None


def scripted_rewrite(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The rewrite a scripted model proposes, or None when this is not a rewrite request."""
    text = messages_text(messages)
    if REWRITE_MARK not in text:
        return None
    outside = _outside_fences(text)
    heads = [json.loads(m.group(1)) for m in _EXAMPLE_HEAD.finditer(outside)]
    bodies = _fenced(text, "EXAMPLE_RESPONSE")
    pairs = [(words(body), value) for value, body in zip(heads, bodies, strict=False)]
    levels = [v for v, _ in _levels(text)]
    old = dict(_levels(text))
    anchors: dict[str, str] = {}
    thresholds: dict[Any, int] = {}
    for position, value in enumerate(levels):
        if position == 0:
            continue
        below = [n for n, v in pairs if v in levels[:position]]
        above = [n for n, v in pairs if v in levels[position:]]
        if below:
            thresholds[value] = max(below) + 1
        elif above:
            thresholds[value] = min(above)
        elif old.get(value) is not None:
            thresholds[value] = old[value]
    for position, value in enumerate(levels):
        if value in thresholds:
            anchors[str(value)] = f"The answer has at least {thresholds[value]} words."
        elif position == 0 and len(levels) > 1 and levels[1] in thresholds:
            anchors[str(value)] = (f"The answer has fewer than {thresholds[levels[1]]} words.")
        else:
            anchors[str(value)] = "Judge by the description."
    why = (f"Fitted word thresholds to {len(pairs)} examples people judged: "
           + ", ".join(f"{v} from {n} words" for v, n in thresholds.items()) + ".")
    return {"description": "Judge the answer by its length in words.", "anchors": anchors,
            "why": why}
