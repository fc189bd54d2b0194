"""OpenAI-style grader JSON: score_model per criterion (multi for weighted criteria); for a
pairwise judge a score_model against {{item.reference}} and a label_model for evaluations.

The SDK accepts unknown keys and types `multi` graders loosely, so `grader_problems` checks
what it does not: template namespaces only `item` and `sample`, `range` of two numbers,
`passing_labels` within `labels`, formula names equal to the `graders` keys.
"""

from __future__ import annotations

import re
import secrets

from apps.rubrics import prompting, scales

_NAMESPACE_RE = re.compile(r"\{\{\s*([A-Za-z_]+)\.")
_FORMULA_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Our template variables in OpenAI's template language.
SAMPLE = "{{sample.output_text}}"
REFERENCE = "{{item.reference}}"
ITEM_VARIABLES = {
    "prompt": "{{item.prompt}}",
    "response": SAMPLE,
    "response_a": SAMPLE,
    "response_b": REFERENCE,
    "reference": REFERENCE,
}


def _provider_model(model: str) -> str:
    return model.split("/", 1)[1] if model.startswith("openai/") else model


def fence_ids() -> dict[str, str]:
    """A fresh random id per fenced field, for one export. In the app a fence's id is a hash of
    the text it holds; a grader's text is a template variable, so its id is drawn per export:
    the model being trained cannot know it, so cannot write the end marker into its answer."""
    return {name: secrets.token_hex(5) for name in ITEM_VARIABLES}


def grader_uses_reference(spec: dict, dataset) -> bool:
    """Whether the grader's items need a `reference`: always for pairwise (the reference is
    response B); for pointwise only when the prompt uses {{ reference }} and the judge was
    calibrated on items that have one (otherwise the calibrated prompt had it empty)."""
    if spec.get("mode") == "pairwise":
        return True
    used = prompting.variables_used(spec["user_template"]) | prompting.variables_used(
        spec.get("system_template") or "")
    return "reference" in used and dataset.items.exclude(reference="").exists()


def _messages(spec: dict, criterion: dict, instruction: str, *, ids: dict[str, str],
              uses_reference: bool) -> list[dict]:
    """Our system and user templates with OpenAI template variables in the fenced places."""
    context = {}
    for name, value in ITEM_VARIABLES.items():
        if value == REFERENCE and not uses_reference:
            context[name] = prompting.fence(name, "")  # as the calibrated prompt had it
            continue
        tag, marker = name.upper(), ids[name]
        context[name] = f"<<<{tag} {marker}>>>\n{value}\n<<<END {tag} {marker}>>>"
    context["task"] = spec.get("description") or ""
    context["criterion"] = prompting.render_criterion(criterion)
    context["criteria"] = prompting.render_criteria(spec["criteria"])
    system = prompting.render_template(spec.get("system_template") or "", context).strip()
    user = prompting.render_template(spec["user_template"], context).strip()
    return [
        {"role": "system", "content": f"{system}\n\n{prompting.FENCE_NOTICE}".strip()},
        {"role": "user", "content": f"{user}\n\n{instruction}"},
    ]


def _score_instruction(criterion: dict) -> str:
    scale = criterion["scale"]
    mapping = ", ".join(
        f"{level['value']}{' (' + level['label'] + ')' if level.get('label') else ''} -> "
        f"{scales.level_score(scale, level['value']):.4g}"
        for level in scale["levels"]
    )
    return ("Choose the level that fits and reply with its score only, a number from 0 to 1. "
            f"Levels and scores: {mapping}.")


def _sampling(model: dict) -> dict:
    return {"temperature": model["temperature"], "max_completions_tokens": model["max_tokens"]}


def score_model(spec: dict, criterion: dict, model: dict, *, name: str, **render) -> dict:
    return {
        "type": "score_model", "name": name, "model": _provider_model(model["model"]),
        "input": _messages(spec, criterion, _score_instruction(criterion), **render),
        "range": [0, 1], "sampling_params": _sampling(model),
    }


def pairwise_score_model(spec: dict, criterion: dict, model: dict, *, name: str,
                         **render) -> dict:
    instruction = ("Response A is the sample, response B the reference. Reply with a number "
                   "only: 1 if A is better, 0.5 if neither is clearly better, 0 if B is "
                   "better.")
    return {
        "type": "score_model", "name": name, "model": _provider_model(model["model"]),
        "input": _messages(spec, criterion, instruction, **render), "range": [0, 1],
        "sampling_params": _sampling(model),
    }


def pairwise_label_model(spec: dict, criterion: dict, model: dict, *, name: str,
                         **render) -> dict:
    instruction = ("Response A is the sample, response B the reference. Reply with one word: "
                   "better (A is better), tie, or worse (B is better).")
    return {
        "type": "label_model", "name": name, "model": _provider_model(model["model"]),
        "input": _messages(spec, criterion, instruction, **render),
        "labels": ["better", "tie", "worse"], "passing_labels": ["better", "tie"],
    }


def formula_names(keys: list[str]) -> dict[str, str]:
    """A name for each criterion key that `calculate_output` can use.

    Criterion keys may hold '-' and start with a digit ("follows-format", "2nd-turn"), which a
    formula would read as a subtraction or a number. Such a key gets '_' for each other
    character and a 'c_' prefix before a digit; a name already taken gets '_2', '_3', ... The
    sub-grader's own `name` stays the criterion key, so the mapping travels in the grader.
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for key in keys:
        base = re.sub(r"[^A-Za-z0-9_]", "_", key)
        if not _FORMULA_NAME_RE.fullmatch(base):
            base = f"c_{base}"
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}_{n}"
        taken.add(candidate)
        out[key] = candidate
    return out


def build_graders(spec: dict, model: dict, *, name: str, uses_reference: bool = True) -> dict:
    """{"grader": fine-tuning grader, "label_grader": evaluation grader or None}."""
    weighted = [c for c in spec["criteria"] if c["weight"] > 0]
    pairwise = spec.get("mode") == "pairwise"
    make = pairwise_score_model if pairwise else score_model
    render = {"ids": fence_ids(), "uses_reference": uses_reference or pairwise}
    if len(weighted) == 1:
        grader = make(spec, weighted[0], model, name=name, **render)
    else:
        total = sum(c["weight"] for c in weighted)
        names = formula_names([c["key"] for c in weighted])
        formula = " + ".join(f"{c['weight']:g} * {names[c['key']]}" for c in weighted)
        grader = {
            "type": "multi", "name": name,
            "graders": {names[c["key"]]: make(spec, c, model, name=c["key"], **render)
                        for c in weighted},
            "calculate_output": f"({formula}) / {total:g}",
        }
    label = None
    if pairwise:
        label = pairwise_label_model(spec, weighted[0], model, name=f"{name}_label", **render)
    return {"grader": grader, "label_grader": label}


def _template_problems(messages: list[dict], where: str) -> list[str]:
    problems = []
    for i, message in enumerate(messages):
        for namespace in _NAMESPACE_RE.findall(message.get("content", "")):
            if namespace not in ("item", "sample"):
                problems.append(f"{where}.input[{i}]: template namespace '{namespace}' "
                                "(only item and sample)")
    return problems


def grader_problems(grader: dict, where: str = "grader") -> list[str]:
    """Our checks beyond the SDK's types."""
    problems = []
    kind = grader.get("type")
    if kind in ("score_model", "label_model"):
        problems += _template_problems(grader.get("input", []), where)
    if kind == "score_model":
        r = grader.get("range")
        if not (isinstance(r, list) and len(r) == 2
                and all(isinstance(x, int | float) and not isinstance(x, bool) for x in r)
                and r[0] < r[1]):
            problems.append(f"{where}.range: two increasing numbers")
    if kind == "label_model":
        if not set(grader.get("passing_labels", [])) <= set(grader.get("labels", [])):
            problems.append(f"{where}.passing_labels: must be among labels")
    if kind == "multi":
        graders = grader.get("graders")
        if not isinstance(graders, dict) or not graders:
            return problems + [f"{where}.graders: a mapping of name to grader"]
        names = set(_FORMULA_NAME_RE.findall(grader.get("calculate_output", "")))
        if names != set(graders):
            problems.append(f"{where}.calculate_output: names {sorted(names)} must equal the "
                            f"graders {sorted(graders)}")
        for key, sub in graders.items():
            problems += grader_problems(sub, f"{where}.graders.{key}")
    return problems
