"""The calibration index: every judge x every criterion of one rubric version on one dataset
(kappa with its interval, pass / fail, n, failed calls), a forest plot per criterion, sortable;
and the same table as a fragment for the rubric page."""

from __future__ import annotations

from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from apps.calibration.report import Thresholds
from apps.calibration.selectors import get_calibration_for_user
from apps.calibration.summary import judge_matrix
from apps.datasets.models import Dataset
from apps.judging.models import JudgeRun
from apps.projects.access import Need, get_project_for_user
from apps.rubrics.models import Rubric


def _int(request, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() and len(value) < 12 else None


def _sort(request, criteria_keys) -> tuple[str, bool]:
    sort = request.GET.get("sort", "")
    if sort not in ("name", "failed", *criteria_keys):
        sort = ""
    default = "asc" if sort == "name" else "desc"
    return sort, request.GET.get("dir", default) != "asc"


def _version_and_dataset(request, rubric: Rubric):
    """The version asked for, else the latest published one (else the draft); the dataset asked
    for, else the one this version was judged on most recently."""
    versions = list(rubric.versions.order_by("-number"))
    number = _int(request, "version")
    published = [v for v in versions if v.is_published]
    version = next((v for v in versions if v.number == number),
                   published[0] if published else (versions[0] if versions else None))
    datasets = list(Dataset.objects.filter(project_id=rubric.project_id, kind=rubric.mode)
                    .order_by("name"))
    dataset = next((d for d in datasets if d.pk == _int(request, "dataset")), None)
    if dataset is None and version is not None:
        latest = (JudgeRun.objects.filter(rubric_version=version).order_by("-created_at")
                  .values_list("dataset_id", flat=True).first())
        dataset = next((d for d in datasets if d.pk == latest), datasets[0] if datasets else None)
    return versions, version, datasets, dataset


def _matrix_context(request, rubric: Rubric, access, *, source: str) -> dict:
    versions, version, datasets, dataset = _version_and_dataset(request, rubric)
    context = {"rubric": rubric, "versions": versions, "version": version,
               "datasets": datasets, "dataset": dataset, "matrix": None}
    if version is None or dataset is None:
        return context
    keys = list(version.criteria.values_list("key", flat=True))
    sort, descending = _sort(request, keys)
    base = reverse("calibration_index", args=[access.project.slug])
    context["sort_base"] = (f"{base}?rubric={quote(rubric.slug)}&version={version.number}"
                            f"&dataset={dataset.pk}")
    context["matrix"] = judge_matrix(
        version=version, dataset=dataset, thresholds=Thresholds.for_project(access.project),
        user=request.user, source=source, sort=sort, descending=descending)
    return context


@login_required
@require_GET
def calibration_index(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.READ)
    rubrics = list(Rubric.objects.filter(project=access.project).order_by("name"))
    chosen = next((r for r in rubrics if r.slug == request.GET.get("rubric")), None)
    if chosen is None and rubrics:
        # The rubric whose judges ran last, so the page opens on what is being worked on.
        last = (JudgeRun.objects.filter(project=access.project)
                .order_by("-created_at").values_list("rubric_version__rubric_id", flat=True)
                .first())
        chosen = next((r for r in rubrics if r.pk == last), rubrics[0])
    context = {"access": access, "project": access.project, "rubrics": rubrics,
               "nav": "calibration"}
    if chosen is not None:
        context.update(_matrix_context(request, chosen, access, source="index"))
    template = "calibration/index.html"
    if request.htmx and request.htmx.target == "judge-matrix":
        template += "#matrix"
    return render(request, template, context)


@login_required
@require_GET
def calibration_summary_fragment(request: HttpRequest, slug: str,
                                 rubric_slug: str) -> HttpResponse:
    """The judge x criterion table for the rubric page (loaded there with htmx)."""
    rubric, access = get_calibration_for_user(request.user, slug, rubric_slug)
    context = {"access": access, "project": access.project, "fragment": True,
               **_matrix_context(request, rubric, access, source="rubric page")}
    return render(request, "calibration/index.html#matrix", context)
