"""The version history of a rubric: list, one version, its YAML, and the diff of two."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.projects.access import Need
from apps.rubrics import yaml_io
from apps.rubrics.diff import version_diff
from apps.rubrics.selectors import get_rubric_for_user, get_version, version_content


@login_required
@require_GET
def version_list(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.READ)
    versions = rubric.versions.select_related("published_by").order_by("-number")
    return render(request, "rubrics/version_list.html",
                  {"access": access, "project": access.project, "rubric": rubric,
                   "versions": versions, "nav": "rubrics"})


@login_required
@require_GET
def version_detail(request: HttpRequest, slug: str, rubric_slug: str, number: int):
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.READ)
    version = get_version(rubric, number)
    return render(request, "rubrics/version_detail.html",
                  {"access": access, "project": access.project, "rubric": rubric,
                   "version": version, "criteria": version.criteria.order_by("position", "id"),
                   "yaml": yaml_io.dump(version_content(version)), "nav": "rubrics"})


@login_required
@require_GET
def version_yaml(request: HttpRequest, slug: str, rubric_slug: str, number: int):
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.READ)
    version = get_version(rubric, number)
    response = HttpResponse(yaml_io.dump(version_content(version)),
                            content_type="application/x-yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{rubric.slug}-v{number}.yaml"'
    return response


@login_required
@require_GET
def version_compare(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.READ)
    numbers = list(rubric.versions.order_by("number").values_list("number", flat=True))
    if not numbers:
        raise Http404("No versions")

    def pick(name: str, default: int) -> int:
        # Left out: the default pair. Named but not a version: 404, as for version_detail,
        # rather than quietly comparing two other versions than the ones asked for.
        value = request.GET.get(name, "").strip()
        if not value:
            return default
        if not value.isdigit() or int(value) not in numbers:
            raise Http404(f"No version {value} of this rubric")
        return int(value)

    b = pick("b", numbers[-1])
    a = pick("a", numbers[-2] if len(numbers) > 1 else numbers[-1])
    old, new = get_version(rubric, a), get_version(rubric, b)
    diff = version_diff(version_content(old), version_content(new))
    return render(request, "rubrics/version_compare.html",
                  {"access": access, "project": access.project, "rubric": rubric, "old": old,
                   "new": new, "diff": diff, "numbers": numbers, "nav": "rubrics"})
