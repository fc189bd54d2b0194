"""Looking up rubrics and versions by name for management commands, with one-line errors."""

from __future__ import annotations

from django.core.management.base import CommandError

from apps.rubrics.models import Rubric, RubricVersion
from apps.rubrics.selectors import latest_published


def rubric_or_error(project, slug: str) -> Rubric:
    rubric = Rubric.objects.filter(project=project, slug=slug).first()
    if rubric is None:
        raise CommandError(f"no rubric '{slug}' in project '{project.slug}'")
    return rubric


def version_or_error(rubric: Rubric, number: int | None, *,
                     published_only: bool = False) -> RubricVersion:
    """Version `number`, else the latest published one (else, unless published_only, the
    draft)."""
    if number is not None:
        version = rubric.versions.filter(number=number).first()
        if version is None:
            raise CommandError(f"rubric '{rubric.slug}' has no version {number}")
        return version
    version = latest_published(rubric)
    if version is None and not published_only:
        version = rubric.versions.order_by("-number").first()
    if version is None:
        raise CommandError(f"rubric '{rubric.slug}' has no published version")
    return version
