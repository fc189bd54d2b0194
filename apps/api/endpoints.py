from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpResponse
from ninja import File, Router, Schema, Status
from ninja.files import UploadedFile

from apps.api.auth import check_token_scope, project_access
from apps.datasets.models import Dataset
from apps.datasets.rows import guess_format
from apps.projects.access import Need
from apps.rubrics import yaml_io
from apps.rubrics.models import Rubric
from apps.rubrics.selectors import (
    get_rubric_for_user,
    get_version,
    latest_published,
    version_content,
)

router = Router()


class VersionOut(Schema):
    number: int
    published: bool
    content_hash: str
    note: str


class RubricOut(Schema):
    slug: str
    name: str
    mode: str
    latest_published: int | None
    versions: list[VersionOut]


class DatasetOut(Schema):
    id: int
    name: str
    kind: str
    item_count: int
    texts_available: bool


class Problem(Schema):
    line: int
    field: str
    message: str


class ImportOut(Schema):
    ok: bool
    dataset: DatasetOut | None
    items: int
    labels: int
    verdicts: int
    judges: list[str]
    problems: list[Problem]
    summary: str


class Error(Schema):
    detail: str


class ImportJobOut(Schema):
    id: int
    status: str
    dataset_name: str
    bytes_total: int
    bytes_read: int
    summary: str
    problems: list[Problem]
    dataset: DatasetOut | None


@router.get("projects/{slug}/rubrics", response={200: list[RubricOut], 403: Error, 404: Error},
            summary="List rubrics")
def list_rubrics(request, slug: str):
    access = project_access(request, slug, need=Need.READ)
    rubrics = Rubric.objects.filter(project=access.project).prefetch_related("versions")
    out = []
    for rubric in rubrics:
        versions = sorted(rubric.versions.all(), key=lambda v: v.number)
        published = [v.number for v in versions if v.is_published]
        out.append(RubricOut(
            slug=rubric.slug, name=rubric.name, mode=rubric.mode,
            latest_published=published[-1] if published else None,
            versions=[VersionOut(number=v.number, published=v.is_published,
                                 content_hash=v.content_hash, note=v.note) for v in versions],
        ))
    return out


@router.get("projects/{slug}/rubrics/{rubric_slug}/yaml",
            response={200: str, 403: Error, 404: Error}, summary="A rubric version as YAML",
            openapi_extra={"responses": {200: {"content": {"application/x-yaml": {}}}}})
def rubric_yaml(request, slug: str, rubric_slug: str, version: int | None = None):
    """The YAML form (as `rubric_export`): the latest published version (the draft if none is
    published yet), or `version`. The `X-Rubric-Version` header names the version sent."""
    check_token_scope(request, slug)
    rubric, _ = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.READ)
    if version is not None:
        chosen = get_version(rubric, version)
    else:
        chosen = latest_published(rubric) or rubric.versions.order_by("-number").first()
    if chosen is None:
        raise Http404("The rubric has no version yet")
    response = HttpResponse(yaml_io.dump(version_content(chosen)),
                            content_type="application/x-yaml; charset=utf-8")
    response["X-Rubric-Version"] = str(chosen.number)
    return response


def _dataset_out(dataset: Dataset) -> DatasetOut:
    return DatasetOut(id=dataset.pk, name=dataset.name, kind=dataset.kind,
                      item_count=dataset.item_count, texts_available=dataset.texts_available)


@router.get("projects/{slug}/datasets", response={200: list[DatasetOut], 403: Error, 404: Error},
            summary="List datasets")
def list_datasets(request, slug: str):
    access = project_access(request, slug, need=Need.READ)
    return [_dataset_out(d) for d in Dataset.objects.filter(project=access.project)]


def _job_out(job) -> ImportJobOut:
    return ImportJobOut(
        id=job.pk, status=job.status, dataset_name=job.dataset_name,
        bytes_total=job.bytes_total, bytes_read=job.bytes_read, summary=job.summary,
        problems=[Problem(**p) for p in job.problems],
        dataset=_dataset_out(job.dataset) if job.dataset else None)


@router.get("projects/{slug}/imports/{job_id}",
            response={200: ImportJobOut, 403: Error, 404: Error},
            summary="A background import: status, progress and outcome")
def import_job(request, slug: str, job_id: int):
    check_token_scope(request, slug)
    from apps.intake.jobs import get_import_job_for_user

    _, job = get_import_job_for_user(request.user, slug, job_id)
    return _job_out(job)


@router.post("projects/{slug}/datasets/{name}/items",
             response={201: ImportOut, 202: ImportJobOut, 403: Error, 404: Error, 413: Error,
                       422: ImportOut},
             summary="Import items (JSONL or CSV) into a dataset")
def import_items(request, slug: str, name: str, file: File[UploadedFile],
                 rubric: str | None = None, kind: str | None = None):
    """All or nothing, as `dataset_import`: a new name creates the dataset. On any bad row nothing
    is stored and every problem is returned with its line and field (422). A file larger than
    IMPORT_INLINE_MAX_MB is imported by a worker: 202 with the job, to poll at
    `GET .../imports/{id}`. Over DATASET_MAX_UPLOAD_MB: 413, before the body is read."""
    access = project_access(request, slug, need=Need.WRITE)
    from apps.datasets.rows import RowProblem
    from apps.intake.services import ImportResult, dataset_file_import

    try:
        fmt = guess_format(file.name or "")
    except ValueError as exc:
        result = ImportResult(dataset_name=name, problems=[RowProblem(0, "file", str(exc))])
    else:
        if kind not in (None, "", "pointwise", "pairwise"):
            result = ImportResult(dataset_name=name, problems=[
                RowProblem(0, "kind", "pointwise or pairwise")])
        elif file.size > settings.IMPORT_INLINE_MAX_MB * 1024 * 1024:
            from apps.intake.jobs import import_job_create

            job = import_job_create(project=access.project, stream=file.open("rb"),
                                    filename=file.name or "", dataset_name=name, fmt=fmt,
                                    kind=kind or None, rubric_slug=rubric or None,
                                    user=request.user)
            return Status(202, _job_out(job))
        else:
            result = dataset_file_import(
                project=access.project, dataset_name=name, stream=file.open("rb"), fmt=fmt,
                size=file.size, kind=kind or None, rubric_slug=rubric or None, user=request.user,
            )
    body = ImportOut(
        ok=result.ok, dataset=_dataset_out(result.dataset) if result.dataset else None,
        items=result.items, labels=result.labels, verdicts=result.verdicts, judges=result.judges,
        problems=[Problem(line=p.line, field=p.field, message=p.message) for p in result.problems],
        summary=result.summary(),
    )
    return Status(201 if result.ok else 422, body)
