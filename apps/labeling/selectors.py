"""Reads for human labels."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count

from apps.labeling.models import HumanLabel


def label_counts(item_ids: Iterable[int]) -> dict[int, int]:
    rows = (
        HumanLabel.objects.filter(item_id__in=list(item_ids))
        .values("item_id")
        .annotate(n=Count("id"))
        .values_list("item_id", "n")
    )
    return dict(rows)
