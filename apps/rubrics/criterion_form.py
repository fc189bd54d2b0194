"""The criterion editor's form: a variable number of level rows, read from and written to POST
data, with content errors mapped back onto the fields they concern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from apps.rubrics import scales

_LEVEL_ERROR_RE = re.compile(r"^criterion\.scale\.levels\[(\d+)\]\.(\w+): (.*)$")
_FIELD_ERROR_RE = re.compile(r"^criterion\.(key|name|description|weight): (.*)$")


@dataclass
class LevelRow:
    index: int
    value: object
    label: str = ""
    anchor: str = ""
    score: str = ""
    # field name ("value", "label", "anchor", "score") -> messages, shown next to that field
    errors: dict[str, list[str]] = field(default_factory=dict)
    value_editable: bool = False


@dataclass
class CriterionForm:
    key: str = ""
    name: str = ""
    description: str = ""
    weight: str = "1"
    scale_type: str = scales.ORDINAL
    n_levels: int = 5
    levels: list[LevelRow] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)
    general_errors: list[str] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return bool(self.errors or self.general_errors or any(r.errors for r in self.levels))

    def raw(self) -> dict:
        """The criterion as content (what content.clean_criterion checks)."""
        try:
            weight: object = float(self.weight)
        except ValueError:
            weight = self.weight  # content validation reports it as not a number
        levels = []
        for row in self.levels:
            level = {"value": row.value, "label": row.label, "anchor": row.anchor}
            if self.scale_type == scales.CATEGORICAL:
                try:
                    level["score"] = float(row.score) if row.score.strip() else None
                except ValueError:
                    level["score"] = row.score
            levels.append(level)
        return {
            "key": self.key.strip(),
            "name": self.name.strip(),
            "description": self.description.strip(),
            "weight": weight,
            "scale": {"type": self.scale_type, "levels": levels},
        }

    def add_errors(self, messages: list[str]) -> None:
        for message in messages:
            level = _LEVEL_ERROR_RE.match(message)
            plain = _FIELD_ERROR_RE.match(message)
            if level and int(level.group(1)) < len(self.levels):
                row = self.levels[int(level.group(1))]
                row.errors.setdefault(level.group(2), []).append(level.group(3))
            elif plain:
                self.errors.setdefault(plain.group(1), []).append(plain.group(2))
            else:
                self.general_errors.append(message.removeprefix("criterion."))


def _fixed_values(scale_type: str, n_levels: int) -> list | None:
    if scale_type == scales.BINARY:
        return [0, 1]
    if scale_type == scales.ORDINAL:
        return list(range(1, n_levels + 1))
    if scale_type == scales.PAIRWISE:
        return list(scales.PAIRWISE_VALUES)
    return None


def form_from_criterion(criterion) -> CriterionForm:
    levels = [
        LevelRow(
            index=i, value=level["value"], label=level.get("label", ""),
            anchor=level.get("anchor", ""),
            score="" if level.get("score") is None else f"{level['score']:g}",
            value_editable=criterion.scale_type == scales.CATEGORICAL,
        )
        for i, level in enumerate(criterion.levels)
    ]
    return CriterionForm(
        key=criterion.key, name=criterion.name, description=criterion.description,
        weight=f"{criterion.weight:g}", scale_type=criterion.scale_type, n_levels=len(levels),
        levels=levels,
    )


def blank_form(*, pairwise: bool) -> CriterionForm:
    kind = scales.PAIRWISE if pairwise else scales.ORDINAL
    defaults = scales.default_levels(kind)
    return CriterionForm(
        scale_type=kind, n_levels=len(defaults),
        levels=[
            LevelRow(index=i, value=lv["value"], label=lv.get("label", ""),
                     anchor=lv.get("anchor", ""), value_editable=False)
            for i, lv in enumerate(defaults)
        ],
    )


def _field(data, prefix: str, name: str, default: dict, *, submitted: bool) -> str:
    """One cell of a level row: as typed when the row was submitted, else the default."""
    if submitted:
        return (data.get(prefix + name) or "").strip()
    fallback = default.get(name)
    if fallback is None:
        return ""
    return f"{fallback:g}" if name == "score" else str(fallback)


def form_from_post(data, *, pairwise: bool) -> CriterionForm:
    """The form as submitted, or as it should be re-drawn after a change of scale or size.

    `shown_scale_type` (a hidden field) is the scale the rows were drawn for. When the scale
    changes, values, labels and scores of the old scale mean nothing on the new one and start
    from the new scale's defaults; anchors already written are kept, since losing typed text to
    a stray click is worse than an anchor to reword. Rows added by a larger N start blank.
    A scale with fixed values (binary, pairwise) ignores N.
    """
    if pairwise:
        scale_type = scales.PAIRWISE
    else:
        scale_type = data.get("scale_type") or scales.ORDINAL
        if scale_type not in (scales.BINARY, scales.ORDINAL, scales.CATEGORICAL):
            scale_type = scales.ORDINAL
    same_scale = data.get("shown_scale_type", scale_type) == scale_type
    default_n = len(scales.default_levels(scale_type))
    rows_shown = sum(1 for i in range(10) if f"level-{i}-anchor" in data)
    try:
        n_levels = int(data.get("n_levels") or default_n)
    except ValueError:
        n_levels = default_n
    if not same_scale:  # keep every row whose anchor may have been written
        n_levels = max(rows_shown, default_n)
    n_levels = max(2, min(n_levels, 10))
    fixed = _fixed_values(scale_type, n_levels)
    if fixed is not None:
        n_levels = len(fixed)
    defaults = scales.default_levels(scale_type, n_levels)
    rows = []
    for i in range(n_levels):
        prefix = f"level-{i}-"
        default = defaults[i] if i < len(defaults) else {}
        submitted = same_scale and prefix + "anchor" in data
        typed_anchor = (data.get(prefix + "anchor") or "").strip()
        rows.append(
            LevelRow(
                index=i,
                value=fixed[i] if fixed is not None else _field(data, prefix, "value", default,
                                                                 submitted=submitted),
                label=_field(data, prefix, "label", default, submitted=submitted),
                anchor=typed_anchor or _field(data, prefix, "anchor", default, submitted=submitted),
                score=_field(data, prefix, "score", default, submitted=submitted),
                value_editable=fixed is None,
            )
        )
    return CriterionForm(
        key=data.get("key", "").strip(),
        name=data.get("name", "").strip(),
        description=data.get("description", "").strip(),
        weight=data.get("weight", "1").strip() or "1",
        scale_type=scale_type,
        n_levels=n_levels,
        levels=rows,
    )
