"""The dataset upload page: a file that may carry items, labels and verdicts together.

It lives in intake, above the apps whose rows it writes, so datasets never reaches up to the
rubrics (for the label check) or to the importer (DESIGN.md: dependencies point one way).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods

from apps.datasets.forms import DatasetUploadForm
from apps.datasets.rows import guess_format
from apps.intake.services import dataset_file_import
from apps.projects.access import Need, get_project_for_user
from apps.rubrics.models import Rubric


def _body_too_long(content_length: int) -> bool:
    # The body holds the file plus the form's other fields and multipart boundaries.
    return content_length > settings.DATASET_MAX_UPLOAD_MB * 1024 * 1024 + 64 * 1024


class _SkipOversizedFile(FileUploadHandler):
    """Keeps Django from spooling a file over the dataset size limit to disk.

    CsrfViewMiddleware reads request.POST before a view runs, and that parses the multipart body
    and writes its file to FILE_UPLOAD_TEMP_DIR, so a size check in the view alone comes after
    the disk has filled. This handler sees Content-Length first and stops at the first file: the
    fields before it (the CSRF token, the name) are kept, the rest of the body is read and
    dropped so the browser still gets the page that says why.
    """

    too_big = False

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.too_big = _body_too_long(content_length)
        return None

    def new_file(self, *args, **kwargs):
        if self.too_big:
            raise StopUpload(connection_reset=False)

    def receive_data_chunk(self, raw_data, start):
        return raw_data

    def file_complete(self, file_size):
        return None


@csrf_exempt  # only so the handler goes in before CSRF reads the body; checked just below
def dataset_upload(request: HttpRequest, slug: str) -> HttpResponse:
    # Upload handlers can only change before request.POST is first read (Django's documented
    # pattern: csrf_exempt outside, csrf_protect inside).
    request.upload_handlers.insert(0, _SkipOversizedFile(request))
    return _dataset_upload(request, slug)


@csrf_protect
@login_required
@require_http_methods(["GET", "POST"])
def _dataset_upload(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.WRITE)
    rubrics = Rubric.objects.filter(project=access.project).order_by("name")
    problems: list = []
    summary = ""
    form = DatasetUploadForm(rubrics=rubrics)
    if request.method == "POST":
        # Refuse an oversized upload by its Content-Length (_SkipOversizedFile kept it off disk).
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and _body_too_long(int(length)):
            problems = [f"The file is larger than the {settings.DATASET_MAX_UPLOAD_MB} MB limit."]
        else:
            form = DatasetUploadForm(request.POST, request.FILES, rubrics=rubrics)
            if form.is_valid():
                upload = form.cleaned_data["file"]
                try:
                    fmt = guess_format(upload.name)
                except ValueError as exc:
                    problems = [str(exc)]
                else:
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
