"""The content of a rubric version as plain data: validation with field paths, canonical form,
content hash. YAML files, the browser editor and the API all pass through here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re

from apps.projects.text import text_problem
from apps.rubrics import prompting, scales

MODES = ("pointwise", "pairwise")
_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,59}$")
_TOP_FIELDS = ("rubric", "name", "mode", "description", "pass_threshold", "prompt", "criteria")
_CRITERION_FIELDS = ("key", "name", "description", "weight", "scale", "examples")
# Few-shot examples of a criterion: item texts with the people's verdict (docs/rubric-yaml.md).
EXAMPLE_TEXT_FIELDS = ("prompt", "response", "response_a", "response_b", "reference")
_EXAMPLE_FIELDS = (*EXAMPLE_TEXT_FIELDS, "value", "source")
MAX_EXAMPLES = 8
EXAMPLE_TEXT_MAX = 20_000
NAME_MAX = 120  # Rubric.name and Criterion.name columns


class ContentError(ValueError):
    """A rubric that cannot be accepted; `errors` lists every problem with its field path."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _text(
    data: dict, field: str, path: str, errors: list[str], *, required: bool,
    max_length: int | None = None,
) -> str:
    value = data.get(field)
    if value is None:
        if required:
            errors.append(f"{path}{field}: required")
        return ""
    if not isinstance(value, str):
        errors.append(f"{path}{field}: must be text")
        return ""
    if max_length is not None and len(value) > max_length:
        errors.append(f"{path}{field}: at most {max_length} characters")
    problem = text_problem(value)
    if problem:
        errors.append(f"{path}{field}: {problem}")
        return ""
    return value


def _unknown(mapping: dict, known, path: str) -> list[str]:
    # str() first: YAML keys may be numbers or booleans, which do not sort with text.
    return [f"{path}{name}: unknown field" for name in sorted(map(str, set(mapping) - set(known)))]


def clean_text(text: str) -> str:
    """Canonical multi-line text: no trailing spaces on a line, no blank lines around it.

    YAML literal blocks cannot carry trailing spaces, so without this a rubric typed in the
    browser would not hash the same after a round trip through a file.
    """
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def _number(value, path: str, errors: list[str], *, low: float, high: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        errors.append(f"{path}: must be a number")
        return 0.0
    if not math.isfinite(value):
        errors.append(f"{path}: must be a finite number")
        return 0.0
    if value < low or (high is not None and value > high):
        bound = f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}"
        errors.append(f"{path}: must be {bound}")
    return float(value)


def validate(data) -> dict:
    """Check a content mapping and return it in canonical form, or raise ContentError."""
    if not isinstance(data, dict):
        raise ContentError(["(top): a rubric is a mapping with rubric, name, mode, criteria"])
    errors: list[str] = _unknown(data, _TOP_FIELDS, "")
    slug = _text(data, "rubric", "", errors, required=True)
    if slug and not _KEY_RE.fullmatch(slug):
        errors.append("rubric: a slug of lower-case letters, digits, - and _ (max 60)")
    name = _text(data, "name", "", errors, required=False, max_length=NAME_MAX).strip() or slug
    mode = data.get("mode", "pointwise")
    if not isinstance(mode, str) or mode not in MODES:
        errors.append(f"mode: must be one of {', '.join(MODES)}")
    description = _text(data, "description", "", errors, required=False)
    threshold = _number(
        data.get("pass_threshold", 0.5), "pass_threshold", errors, low=0.0, high=1.0
    )
    prompt = data.get("prompt") or {}
    if not isinstance(prompt, dict):
        errors.append("prompt: a mapping with system and user templates")
        prompt = {}
    errors += _unknown(prompt, ("system", "user"), "prompt.")
    pairwise = mode == "pairwise"
    # A template left out gets the mode's default; one written as "" stays empty, so a system
    # message deliberately cleared in the editor is not brought back by publishing.
    system = (
        _text(prompt, "system", "prompt.", errors, required=False)
        if prompt.get("system") is not None
        else prompting.DEFAULT_SYSTEM_PAIRWISE if pairwise else prompting.DEFAULT_SYSTEM_POINTWISE
    )
    user = (
        _text(prompt, "user", "prompt.", errors, required=False)
        if prompt.get("user") is not None
        else prompting.DEFAULT_USER_PAIRWISE if pairwise else prompting.DEFAULT_USER_POINTWISE
    )
    for field, template in (("system", system), ("user", user)):
        errors += [f"prompt.{field}: {e}" for e in prompting.template_errors(template)]
    errors += template_coverage_errors(user, pairwise=pairwise, path="prompt.user")

    criteria_in = data.get("criteria")
    criteria: list[dict] = []
    if not isinstance(criteria_in, list) or not criteria_in:
        errors.append("criteria: required, a list with at least one criterion")
        criteria_in = []
    seen: set[str] = set()
    for i, raw in enumerate(criteria_in):
        criterion = clean_criterion(raw, path=f"criteria[{i}]", pairwise=pairwise, errors=errors)
        if criterion is None:
            continue
        if criterion["key"] and criterion["key"] in seen:
            errors.append(f"criteria[{i}].key: '{criterion['key']}' is used twice")
        seen.add(criterion["key"])
        criteria.append(criterion)
    if criteria_in and not any(c["weight"] > 0 for c in criteria):
        errors.append("criteria: at least one criterion needs a weight above 0")
    if errors:
        raise ContentError(errors)
    return {
        "rubric": slug,
        "name": name,
        "mode": mode,
        "description": clean_text(description),
        "pass_threshold": threshold,
        "prompt": {"system": clean_text(system), "user": clean_text(user)},
        "criteria": criteria,
    }


def clean_criterion(raw, *, path: str, pairwise: bool, errors: list[str]) -> dict | None:
    """Check one criterion, appending problems to `errors`; return its canonical form."""
    if not isinstance(raw, dict):
        errors.append(f"{path}: must be a mapping")
        return None
    errors += _unknown(raw, _CRITERION_FIELDS, f"{path}.")
    key = _text(raw, "key", f"{path}.", errors, required=True)
    if key and not _KEY_RE.fullmatch(key):
        errors.append(f"{path}.key: lower-case letters, digits, - and _ (max 60)")
    weight = _number(raw.get("weight", 1), f"{path}.weight", errors, low=0.0, high=None)
    scale = raw.get("scale")
    errors += scales.scale_errors(scale, path=f"{path}.scale", weighted=weight > 0)
    if isinstance(scale, dict) and scale.get("type") in scales.SCALE_TYPES:
        if pairwise and scale["type"] != scales.PAIRWISE:
            errors.append(f"{path}.scale.type: a pairwise rubric uses the pairwise scale")
        if not pairwise and scale["type"] == scales.PAIRWISE:
            errors.append(f"{path}.scale.type: the pairwise scale needs mode: pairwise")
    name = _text(raw, "name", f"{path}.", errors, required=False, max_length=NAME_MAX)
    clean = {
        "key": key,
        "name": name.strip() or key,
        "description": clean_text(_text(raw, "description", f"{path}.", errors, required=False)),
        "weight": weight,
        "scale": _canonical_scale(scale),
    }
    examples = clean_examples(raw.get("examples"), scale=scale, pairwise=pairwise,
                              path=f"{path}.examples", errors=errors)
    if examples:  # absent when empty, so rubrics without examples keep their hash
        clean["examples"] = examples
    return clean


def clean_examples(raw, *, scale, pairwise: bool, path: str, errors: list[str]) -> list[dict]:
    """Few-shot examples: at most MAX_EXAMPLES mappings of item texts and the verdict people
    gave (a value of the criterion's scale), plus where they came from (`source`, never shown
    to the judge)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(f"{path}: a list of examples")
        return []
    if len(raw) > MAX_EXAMPLES:
        errors.append(f"{path}: at most {MAX_EXAMPLES} examples per criterion")
        return []
    allowed = (scales.allowed_values(scale) if isinstance(scale, dict)
               and scale.get("type") in scales.SCALE_TYPES and not scales.scale_errors(
                   scale, path="", weighted=False) else None)
    out = []
    needed = ("response_a", "response_b") if pairwise else ("response",)
    for i, example in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(example, dict):
            errors.append(f"{where}: must be a mapping")
            continue
        errors.extend(_unknown(example, _EXAMPLE_FIELDS, f"{where}."))
        clean = {}
        for field in (*EXAMPLE_TEXT_FIELDS, "source"):
            text = _text(example, field, f"{where}.", errors, required=False,
                         max_length=EXAMPLE_TEXT_MAX)
            if text.strip():
                clean[field] = clean_text(text).strip()
        for field in needed:
            if field not in clean:
                errors.append(f"{where}.{field}: required")
        value = example.get("value")
        if allowed is not None and (isinstance(value, bool) or value not in allowed):
            errors.append(f"{where}.value: one of {allowed}")
        clean["value"] = value
        out.append(clean)
    return out


def template_coverage_errors(user_template: str, *, pairwise: bool, path: str) -> list[str]:
    used = prompting.variables_used(user_template)
    needed = ("response_a", "response_b") if pairwise else ("response",)
    missing = [name for name in needed if name not in used]
    wrong = ["response"] if pairwise and "response" in used else []
    if not pairwise:
        wrong = [n for n in ("response_a", "response_b") if n in used]
    errors = [f"{path}: must contain {{{{ {name} }}}}" for name in missing]
    errors += [f"{path}: {{{{ {name} }}}} is empty for this mode" for name in wrong]
    return errors


def _canonical_scale(scale) -> dict:
    """The scale in canonical form. Called on invalid input too (its errors are already
    recorded), so it must not assume any field has the right type."""
    if not isinstance(scale, dict):
        return {}
    levels = []
    raw_levels = scale.get("levels")
    for level in raw_levels if isinstance(raw_levels, list) else []:
        if not isinstance(level, dict):
            continue
        label, anchor = level.get("label"), level.get("anchor")
        clean = {
            "value": level.get("value"),
            "label": label.strip() if isinstance(label, str) else "",
            "anchor": clean_text(anchor).strip() if isinstance(anchor, str) else "",
        }
        score = level.get("score")
        if scale.get("type") == scales.CATEGORICAL and isinstance(score, int | float):
            clean["score"] = float(score)
        levels.append(clean)
    return {"type": scale.get("type"), "levels": levels}


def content_hash(content: dict) -> str:
    """SHA-256 over what decides a verdict: not the rubric's name or slug."""
    judged = {k: v for k, v in content.items() if k not in ("rubric", "name")}
    canonical = json.dumps(judged, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
