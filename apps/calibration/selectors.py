"""Finding what a report is about: rubric version, dataset and judge, by name or id."""

from __future__ import annotations

from django.shortcuts import get_object_or_404

from apps.datasets.models import Dataset
from apps.judging.models import FINISHED_STATUSES, JudgeRun
from apps.projects.access import Need, ProjectAccess, get_project_for_user
from apps.rubrics.models import Rubric, RubricVersion
from apps.rubrics.selectors import latest_published


class NotFound(LookupError):
    """A name that does not resolve; the message says which and what exists."""


def resolve_version(rubric: Rubric, number: int | None) -> RubricVersion:
    if number is not None:
        version = rubric.versions.filter(number=number).first()
        if version is None:
            raise NotFound(f"rubric '{rubric.slug}' has no version {number}")
        return version
    version = latest_published(rubric) or rubric.versions.order_by("-number").first()
    if version is None:
        raise NotFound(f"rubric '{rubric.slug}' has no version")
    return version


def resolve_judge(version: RubricVersion, dataset: Dataset, name_or_run: str | None):
    """A run id, or a judge name (its latest run); None picks the latest finished run."""
    runs = JudgeRun.objects.filter(rubric_version=version, dataset=dataset)
    if name_or_run is None or name_or_run == "":
        run = runs.filter(status__in=FINISHED_STATUSES).order_by("-created_at").first()
        if run is None:
            raise NotFound(f"no finished judge run of {version.rubric.slug} v{version.number} "
                           f"on '{dataset.name}'")
        return run
    text = str(name_or_run).strip().lstrip("#")
    if text.isdigit():
        run = runs.filter(pk=int(text)).first()
        if run is not None:
            return run
    run = runs.filter(name=str(name_or_run).strip()).order_by("-created_at").first()
    if run is None:
        names = sorted(set(runs.values_list("name", flat=True)))
        raise NotFound(f"no judge '{name_or_run}' for {version.rubric.slug} v{version.number} on "
                       f"'{dataset.name}'; judges: {', '.join(names) or 'none'}")
    return run


def get_calibration_for_user(user, project_slug: str, rubric_slug: str, *,
                             need: Need = Need.READ) -> tuple[Rubric, ProjectAccess]:
    access = get_project_for_user(user, project_slug, need=need)
    rubric = get_object_or_404(Rubric, project=access.project, slug=rubric_slug)
    return rubric, access
