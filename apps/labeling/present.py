"""What the labelling screens show, prepared by the view (STYLE.md 2: the view decides what data
the template gets). Only the item, the rubric and the annotator's own answers go in: no judge
verdict and no other annotator's label is ever read here.

Pairwise items are shown in the annotator's order: `shown_order` "AB" puts response_a on the
left, "BA" puts response_b there. The screen speaks of Left and Right, and names them "Left (A)"
and "Right (B)" so that the buttons and the rubric's anchors (written about A and B) say the same
thing: on screen, the rubric's A is always the left response. Answers are mapped back to the
item's A / B through the recorded order before they are stored (to_item_terms), and stored
values are mapped to the screen again for display (to_screen_terms).
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.datasets.models import Item
from apps.rubrics import scales

SIDES = ("left", "right")
SIDE_NAMES = {"left": "Left (A)", "right": "Right (B)"}


# -- text -------------------------------------------------------------------------------------

def segments(text: str) -> list[tuple[str, str]]:
    """Split text into ("text", ...) and ("code", ...) parts at ``` fences, so code shows in a
    monospace box. Nothing is interpreted as HTML or Markdown; the template escapes it all."""
    out: list[tuple[str, str]] = []
    buffer: list[str] = []
    in_code = False
    for line in (text or "").splitlines(keepends=True):
        if line.lstrip().startswith("```"):
            if buffer:
                out.append(("code" if in_code else "text", "".join(buffer)))
            buffer = []
            in_code = not in_code
            continue
        buffer.append(line)
    if buffer:
        out.append(("code" if in_code else "text", "".join(buffer)))
    return out


@dataclass
class Shown:
    prompt: list
    reference: list
    responses: list[tuple[str, list]]  # (heading, segments), in screen order
    external_id: str
    pairwise: bool


def present_item(item: Item, *, pairwise: bool, shown_order: str,
                 item_terms: bool = False) -> Shown:
    """The item's texts as a screen shows them. Pairwise: in the annotator's order, headed
    "Left (A)" and "Right (B)" in the rubric's words; with `item_terms` (adjudication, where
    values are the item's A and B) headed "Response A" and "Response B"."""
    if pairwise:
        texts = {"A": item.response_a, "B": item.response_b}
        if item_terms:
            responses = [(f"Response {letter}", segments(texts[letter])) for letter in "AB"]
        else:
            order = shown_order or "AB"
            responses = [(SIDE_NAMES[side], segments(texts[letter]))
                         for side, letter in zip(SIDES, order, strict=True)]
    else:
        responses = [("Response", segments(item.response))]
    return Shown(prompt=segments(item.prompt), reference=segments(item.reference),
                 responses=responses, external_id=item.external_id, pairwise=pairwise)


# -- answers --------------------------------------------------------------------------------

def _is_pairwise(criterion: dict) -> bool:
    return criterion["scale"]["type"] == scales.PAIRWISE


def to_item_terms(criteria: list[dict], values: dict, shown_order: str) -> dict:
    """Screen answers ("left" / "right" / "tie" for preferences) in the item's A / B terms."""
    out = dict(values)
    if not shown_order:
        return out
    for criterion in criteria:
        raw = out.get(criterion["key"])
        if _is_pairwise(criterion) and isinstance(raw, str) and raw.lower() in SIDES:
            out[criterion["key"]] = shown_order[SIDES.index(raw.lower())]
    return out


def to_screen_terms(criteria: list[dict], values: dict, shown_order: str) -> dict:
    out = dict(values)
    if not shown_order:
        return out
    for criterion in criteria:
        value = out.get(criterion["key"])
        if _is_pairwise(criterion) and value in ("A", "B"):
            out[criterion["key"]] = SIDES[shown_order.index(value)]
    return out


@dataclass
class Level:
    value: str  # what the radio posts
    digit: str  # the key that picks it
    label: str
    anchor: str


@dataclass
class CriterionView:
    key: str
    name: str
    description: str
    levels: list[Level]
    selected: str = ""
    error: str = ""
    pairwise: bool = False


def _digit(scale: dict, position: int, value) -> str:
    if scale["type"] in (scales.BINARY, scales.ORDINAL):
        return str(value % 10)  # binary 0 / 1, ordinal 1..9, and 0 for a tenth level
    return str((position + 1) % 10)


def criteria_views(criteria: list[dict], *, selected: dict | None = None,
                   errors: dict | None = None) -> list[CriterionView]:
    """Every criterion with every level's anchor; `selected` in screen terms."""
    selected, errors = selected or {}, errors or {}
    views = []
    for criterion in criteria:
        scale = criterion["scale"]
        levels = []
        for position, level in enumerate(scale["levels"]):
            value = level["value"]
            label = level.get("label") or str(value)
            if _is_pairwise(criterion):
                # The rubric's anchors speak of A and B; on screen A is the left response,
                # and the button says both, as the response headings do.
                screen = {"A": "left", "B": "right"}.get(value, str(value))
                label = {"left": "Left (A) is better",
                         "right": "Right (B) is better"}.get(screen, label)
                value = screen
            levels.append(Level(value=str(value), digit=_digit(scale, position, level["value"]),
                                label=label, anchor=level.get("anchor", "")))
        views.append(CriterionView(
            key=criterion["key"], name=criterion.get("name") or criterion["key"],
            description=criterion.get("description", ""), levels=levels,
            selected=str(selected.get(criterion["key"], "")), error=errors.get(
                criterion["key"], ""), pairwise=_is_pairwise(criterion)))
    return views


def describe(criteria: list[dict], values: dict, shown_order: str) -> str:
    """'Correct = 2 (Partly), Safe = 1 (Yes)', in the annotator's own screen terms."""
    screen = to_screen_terms(criteria, values, shown_order)
    parts = []
    for view in criteria_views(criteria):
        value = screen.get(view.key)
        if value is None:
            continue
        label = next((lv.label for lv in view.levels if lv.value == str(value)), "")
        shown = label if view.pairwise else (f"{value} ({label})" if label and label != str(
            value) else str(value))
        parts.append(f"{view.name} = {shown}")
    return ", ".join(parts)


def read_answers(post, criteria: list[dict]) -> tuple[dict, str]:
    """The posted answers (`c_<key>` fields) and the comment, as posted (screen terms)."""
    values = {c["key"]: post.get(f"c_{c['key']}", "") for c in criteria}
    return values, post.get("comment", "")[:5000]
