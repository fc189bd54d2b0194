"""The dataset upload page: a file that may carry items, labels and verdicts together.

It lives in intake, above the apps whose rows it writes, so datasets never reaches up to the
rubrics (for the label check) or to the importer (DESIGN.md: dependencies point one way).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods

from apps.datasets.forms import DatasetUploadForm
from apps.datasets.rows import guess_format
from apps.intake.jobs import get_import_job_for_user, import_job_create
from apps.intake.services import dataset_file_import
from apps.projects.access import Need, get_project_for_user
from apps.rubrics.models import Rubric


@csrf_exempt  # only so that access is checked before CSRF reads the body; checked just below
@require_http_methods(["GET", "POST"])
def dataset_upload(request: HttpRequest, slug: str) -> HttpResponse:
    # The body's size was checked on its headers by config.uploads.UploadGuardMiddleware, which
    # also counts it as it streams. Sign-in and the project role are checked here, before
    # anything reads the body (csrf_protect does, through request.POST).
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    access = get_project_for_user(request.user, slug, need=Need.WRITE)
    return csrf_protect(_dataset_upload)(request, access)


def _dataset_upload(request: HttpRequest, access) -> HttpResponse:
    slug = access.project.slug
    rubrics = Rubric.objects.filter(project=access.project).order_by("name")
    problems: list = []
    summary = ""
    form = DatasetUploadForm(rubrics=rubrics)
    if request.method == "POST":
        form = DatasetUploadForm(request.POST, request.FILES, rubrics=rubrics)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                fmt = guess_format(upload.name)
            except ValueError as exc:
                problems = [str(exc)]
            else:
                if upload.size > settings.IMPORT_INLINE_MAX_MB * 1024 * 1024:
                    # Large: a worker imports it, and the job page shows the progress.
                    job = import_job_create(
                        project=access.project, stream=upload.open("rb"), filename=upload.name,
                        dataset_name=form.cleaned_data["name"], fmt=fmt,
                        kind=form.cleaned_data["kind"] or None,
                        rubric_slug=form.cleaned_data["rubric"] or None,
                        description=form.cleaned_data["description"], user=request.user)
                    return redirect("import_detail", slug=slug, job_id=job.pk)
                result = dataset_file_import(
                    project=access.project, dataset_name=form.cleaned_data["name"],
                    stream=upload.open("rb"), fmt=fmt, size=upload.size,
                    kind=form.cleaned_data["kind"] or None,
                    rubric_slug=form.cleaned_data["rubric"] or None, user=request.user,
                    description=form.cleaned_data["description"],
                )
                if result.ok:
                    messages.success(request, result.summary() + ".")
                    return redirect("dataset_detail", slug=slug, dataset_id=result.dataset.pk)
                problems = result.problems
                summary = result.summary()
    status = 422 if problems or form.errors else 200
    return render(request, "datasets/dataset_upload.html",
                  {"access": access, "project": access.project, "form": form,
                   "problems": problems, "summary": summary, "limit_mb":
                   settings.DATASET_MAX_UPLOAD_MB, "nav": "datasets"}, status=status)


@login_required
@require_http_methods(["GET"])
def import_detail(request: HttpRequest, slug: str, job_id: int) -> HttpResponse:
    access, job = get_import_job_for_user(request.user, slug, job_id)
    context = {"access": access, "project": access.project, "job": job, "nav": "datasets"}
    if request.htmx:
        return render(request, "datasets/import_detail.html#progress", context)
    return render(request, "datasets/import_detail.html", context)
