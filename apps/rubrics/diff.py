"""Differences between two rubric versions, for review before publishing and in the history."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from apps.rubrics import scales


@dataclass
class CriterionChange:
    key: str
    fields: list[str]
    scale_changed: bool  # the scale's values changed: this criterion's human labels start afresh
    old: dict
    new: dict
    # (what, before, after) for the reader: a field, the scale, or one level's wording
    details: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class VersionDiff:
    added: list[dict] = field(default_factory=list)
    removed: list[dict] = field(default_factory=list)
    changed: list[CriterionChange] = field(default_factory=list)
    settings: list[tuple[str, object, object]] = field(default_factory=list)
    system_diff: list[str] = field(default_factory=list)
    user_diff: list[str] = field(default_factory=list)
    order_changed: bool = False

    @property
    def is_empty(self) -> bool:
        return not (
            self.added or self.removed or self.changed or self.settings
            or self.system_diff or self.user_diff or self.order_changed
        )


def _text_diff(old: str, new: str, name: str) -> list[str]:
    return list(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), f"{name} (old)", f"{name} (new)", lineterm=""
        )
    )


def _scale_text(scale: dict) -> str:
    return f"{scale['type']}: {', '.join(str(v) for v in scales.allowed_values(scale))}"


def _level_text(level: dict) -> str:
    parts = [level.get("label") or "", level.get("anchor") or ""]
    if level.get("score") is not None:
        parts.append(f"score {level['score']:g}")
    return " · ".join(p for p in parts if p)


def _details(old_c: dict, new_c: dict, scale_changed: bool) -> list[tuple[str, str, str]]:
    details = [
        (name, str(old_c.get(name)), str(new_c.get(name)))
        for name in ("name", "description", "weight")
        if old_c.get(name) != new_c.get(name)
    ]
    if scale_changed:
        details.append(("scale", _scale_text(old_c["scale"]), _scale_text(new_c["scale"])))
        return details
    for old_level, new_level in zip(old_c["scale"]["levels"], new_c["scale"]["levels"],
                                    strict=False):
        if old_level != new_level:
            details.append(
                (f"level {old_level['value']}", _level_text(old_level), _level_text(new_level))
            )
    return details


def version_diff(old: dict, new: dict) -> VersionDiff:
    """Compare two content mappings (selectors.version_content)."""
    diff = VersionDiff()
    for name in ("description", "pass_threshold"):
        if old.get(name) != new.get(name):
            diff.settings.append((name, old.get(name), new.get(name)))
    diff.system_diff = _text_diff(old["prompt"]["system"], new["prompt"]["system"], "system")
    diff.user_diff = _text_diff(old["prompt"]["user"], new["prompt"]["user"], "user")
    old_by_key = {c["key"]: c for c in old["criteria"]}
    new_by_key = {c["key"]: c for c in new["criteria"]}
    diff.added = [c for c in new["criteria"] if c["key"] not in old_by_key]
    diff.removed = [c for c in old["criteria"] if c["key"] not in new_by_key]
    for key, new_c in new_by_key.items():
        old_c = old_by_key.get(key)
        if old_c is None:
            continue
        changed = [f for f in ("name", "description", "weight") if old_c.get(f) != new_c.get(f)]
        scale_changed = scales.scale_signature(old_c["scale"]) != scales.scale_signature(
            new_c["scale"]
        )
        if scale_changed:
            changed.append("scale")
        elif old_c["scale"] != new_c["scale"]:
            changed.append("anchors")
        if changed:
            diff.changed.append(CriterionChange(
                key, changed, scale_changed, old_c, new_c,
                details=_details(old_c, new_c, scale_changed),
            ))
    common_old = [k for k in old_by_key if k in new_by_key]
    common_new = [k for k in new_by_key if k in old_by_key]
    diff.order_changed = common_old != common_new
    return diff
