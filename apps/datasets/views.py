from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from apps.datasets.forms import DatasetUploadForm
from apps.datasets.models import Dataset
from apps.datasets.rows import guess_format
from apps.datasets.selectors import get_dataset_for_user, get_item_for_user, item_page
from apps.projects.access import Need, get_project_for_user


@login_required
@require_GET
def dataset_list(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.READ)
    datasets = Dataset.objects.filter(project=access.project).order_by("name")
    return render(request, "datasets/dataset_list.html",
                  {"access": access, "project": access.project, "datasets": datasets,
                   "nav": "datasets"})


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
    from apps.rubrics.models import Rubric

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
                    from apps.intake.services import dataset_file_import

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
@require_GET
def dataset_detail(request: HttpRequest, slug: str, dataset_id: int) -> HttpResponse:
    dataset, access = get_dataset_for_user(request.user, slug, dataset_id, need=Need.READ)
    query = request.GET.get("q", "")[:200]
    page_arg = request.GET.get("page", "1")
    page_number = int(page_arg) if page_arg.isdigit() and int(page_arg) < 10**7 else 1
    page = item_page(dataset, query=query, page=page_number,
                     include_sensitive=access.can_read)
    context = {"access": access, "project": access.project, "dataset": dataset, "page": page,
               "query": query, "nav": "datasets"}
    template = "datasets/dataset_detail.html"
    if request.htmx and request.htmx.target == "item-table":
        template += "#item_table"
    return render(request, template, context)


@login_required
@require_GET
def item_detail(request: HttpRequest, slug: str, dataset_id: int, item_id: int) -> HttpResponse:
    item, access = get_item_for_user(request.user, slug, dataset_id, item_id, need=Need.READ)
    dataset = item.dataset
    neighbours = {
        "previous": dataset.items.filter(position__lt=item.position).order_by("-position")
        .values_list("pk", flat=True).first(),
        "next": dataset.items.filter(position__gt=item.position).order_by("position")
        .values_list("pk", flat=True).first(),
    }
    return render(request, "datasets/item_detail.html",
                  {"access": access, "project": access.project, "dataset": dataset, "item": item,
                   "neighbours": neighbours, "nav": "datasets"})
