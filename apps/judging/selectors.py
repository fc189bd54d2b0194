"""Reads for judge runs and verdicts, and the run loader every run view uses (STYLE.md 2)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count
from django.shortcuts import get_object_or_404

from apps.judging.models import JudgeRun, Verdict
from apps.projects.access import Need, ProjectAccess, get_project_for_user


def get_run_for_user(user, project_slug: str, run_id: int, *,
                     need: Need = Need.READ) -> tuple[JudgeRun, ProjectAccess]:
    access = get_project_for_user(user, project_slug, need=need)
    run = get_object_or_404(
        JudgeRun.objects.select_related("rubric_version__rubric", "dataset"),
        project=access.project, pk=run_id,
    )
    return run, access


def verdict_counts(item_ids: Iterable[int]) -> dict[int, int]:
    rows = (
        Verdict.objects.filter(item_id__in=list(item_ids))
        .values("item_id")
        .annotate(n=Count("id"))
        .values_list("item_id", "n")
    )
    return dict(rows)
