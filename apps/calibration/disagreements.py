"""The items where judge and humans differ most: where the rubric or the judge needs work."""

from __future__ import annotations

from dataclasses import dataclass

from apps.calibration.data import CriterionData
from apps.datasets.models import Item
from apps.judging.models import Verdict
from apps.rubrics import scales

PAGE = 25


@dataclass
class Disagreement:
    item: Item
    criterion: str
    distance: float
    reference: object
    judge: object
    labels: dict
    rationale: str


def _distance(scale: dict, a, b) -> float:
    if scales.is_numeric(scale):
        return abs(float(a) - float(b))
    if scale["type"] == scales.PAIRWISE and "tie" in (a, b):
        return 0.5  # A vs tie is a smaller miss than A vs B
    return 1.0


def disagreements(*, data: list[CriterionData], run, criterion: str | None, page: int) -> dict:
    """`data` as loaded for the report (judge attached)."""
    found = []
    for d in data:
        if criterion and d.key != criterion:
            continue
        ref = d.reference()
        for item_id, judged in d.judge.items():
            if item_id in ref and ref[item_id] != judged:
                found.append((_distance(d.scale, ref[item_id], judged), item_id, d, ref[item_id],
                              judged))
    found.sort(key=lambda f: (-f[0], f[1], f[2].key))
    window = found[(page - 1) * PAGE: page * PAGE]
    items = Item.objects.in_bulk([f[1] for f in window])
    rationales = {
        (i, k): r for i, k, r in Verdict.objects.filter(
            run=run, item_id__in=[f[1] for f in window]
        ).values_list("item_id", "criterion_key", "rationale")
    }
    rows = [
        Disagreement(item=items[item_id], criterion=d.key, distance=distance, reference=ref,
                     judge=judged, labels=dict(sorted(d.human.get(item_id, {}).items())),
                     rationale=rationales.get((item_id, d.key), ""))
        for distance, item_id, d, ref, judged in window if item_id in items
    ]
    return {"rows": rows, "total": len(found), "page": page,
            "has_next": page * PAGE < len(found), "has_previous": page > 1,
            "criterion": criterion, "criteria": [d.key for d in data]}
