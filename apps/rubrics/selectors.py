"""Reads for rubrics (STYLE.md 3)."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404

from apps.projects.access import Need, ProjectAccess, get_project_for_user
from apps.rubrics.models import Rubric, RubricVersion


def get_rubric_for_user(
    user, project_slug: str, rubric_slug: str, *, need: Need = Need.READ
) -> tuple[Rubric, ProjectAccess]:
    """The one loader for a rubric: membership first (404 for outsiders), then the role."""
    access = get_project_for_user(user, project_slug, need=need)
    if "\x00" in rubric_slug:  # never a slug; PostgreSQL refuses it in a query
        raise Http404("No such rubric")
    rubric = get_object_or_404(Rubric, project=access.project, slug=rubric_slug)
    return rubric, access


def get_version(rubric: Rubric, number: int) -> RubricVersion:
    return get_object_or_404(RubricVersion, rubric=rubric, number=number)


def latest_published(rubric: Rubric) -> RubricVersion | None:
    return (
        rubric.versions.filter(published_at__isnull=False).order_by("-number").first()
    )


def current_draft(rubric: Rubric) -> RubricVersion | None:
    return rubric.versions.filter(published_at__isnull=True).first()


def version_content(version: RubricVersion) -> dict:
    """The version as content (the YAML form), criteria in their order."""
    rubric = version.rubric
    return {
        "rubric": rubric.slug,
        "name": rubric.name,
        "mode": rubric.mode,
        "description": version.description,
        "pass_threshold": version.pass_threshold,
        "prompt": {"system": version.system_template, "user": version.user_template},
        "criteria": [c.as_content() for c in version.criteria.order_by("position", "id")],
    }


def judge_spec(version: RubricVersion) -> dict:
    """What prompting.build_messages needs for this version."""
    content = version_content(version)
    return {
        "description": content["description"],
        "system_template": content["prompt"]["system"],
        "user_template": content["prompt"]["user"],
        "criteria": content["criteria"],
        "mode": content["mode"],
    }


def why_no_rubric(project, *, mode: str, rubric_slug: str | None = None) -> str:
    """Why version_for_import found nothing, naming what there is: a named rubric that does
    not exist, no rubric of the mode, or several of them (name one)."""
    rubrics = Rubric.objects.filter(project=project).order_by("slug")
    if rubric_slug:
        there = list(rubrics.values_list("slug", flat=True)[:20])
        return (f"the project has no rubric '{rubric_slug}'; its rubrics: "
                f"{', '.join(there) or 'none'}")
    of_mode = list(rubrics.filter(mode=mode).values_list("slug", flat=True)[:20])
    if not of_mode:
        return f"the project has no {mode} rubric to check them against: create it first"
    return (f"the project has {len(of_mode)} {mode} rubrics ({', '.join(of_mode)}): name the "
            "one to check them against (--rubric SLUG)")


def version_for_import(project, *, mode: str, rubric_slug: str | None = None):
    """The rubric version that labels and verdicts in a dataset file are checked against.

    Named rubric, else the project's only rubric of the dataset's mode; its latest published
    version, else its draft. Returns None when it cannot tell (the importer then asks).
    """
    rubrics = Rubric.objects.filter(project=project)
    if rubric_slug:
        rubrics = rubrics.filter(slug=rubric_slug)
    else:
        rubrics = rubrics.filter(mode=mode)
    found = list(rubrics[:2])
    if len(found) != 1:
        return None
    rubric = found[0]
    return latest_published(rubric) or current_draft(rubric)
