"""Reads for judge runs and verdicts."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count

from apps.judging.models import Verdict


def verdict_counts(item_ids: Iterable[int]) -> dict[int, int]:
    rows = (
        Verdict.objects.filter(item_id__in=list(item_ids))
        .values("item_id")
        .annotate(n=Count("id"))
        .values_list("item_id", "n")
    )
    return dict(rows)
