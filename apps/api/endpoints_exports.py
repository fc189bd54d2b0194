"""API for exports: create one, and download it again (pipelines, with a project token)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status

from apps.api.auth import project_access
from apps.exports.models import Export, ExportFormat
from apps.exports.services import GateRefused, judge_export, refusal_line
from apps.exports.views import download_response
from apps.judging.models import JudgeRun
from apps.projects.access import Need, get_project_for_user

router = Router()


class Error(Schema):
    detail: str


class Refused(Schema):
    detail: str
    reasons: list[str]


class ExportIn(Schema):
    run: int
    format: str = ExportFormat.BUNDLE
    force: bool = False
    model: str = ""
    reference_column: str = "reference"


class ExportOut(Schema):
    id: int
    filename: str
    format: str
    calibrated: bool
    forced: bool
    judge_name: str
    model: str
    rubric: str
    version: int
    content_hash: str
    artifact_sha256: str
    download: str
    status_reason: str
    warnings: list[str]


def _out(export: Export) -> dict:
    return {"id": export.pk, "filename": export.filename, "format": export.format,
            "calibrated": export.calibrated, "forced": export.forced,
            "judge_name": export.judge_name, "model": export.model,
            "rubric": export.rubric_version.rubric.slug,
            "version": export.rubric_version.number, "content_hash": export.content_hash,
            "artifact_sha256": export.artifact_sha256,
            "download": f"/api/v1/exports/{export.pk}/bundle.zip",
            "status_reason": export.status.reason, "warnings": export.status.warnings}


@router.post("projects/{slug}/exports",
             response={201: ExportOut, 403: Error, 404: Error, 409: Refused, 422: Error},
             summary="Export a judge (409 with the reasons when it fails the gate)")
def create_export(request, slug: str, payload: ExportIn):
    access = project_access(request, slug, need=Need.WRITE)
    run = get_object_or_404(JudgeRun, project=access.project, pk=payload.run)
    try:
        export = judge_export(run=run, fmt=payload.format, user=request.user,
                              force=payload.force, model=payload.model,
                              reference_column=payload.reference_column)
    except GateRefused as exc:
        return Status(409, Refused(detail=refusal_line(exc.reasons) + "; force=true exports "
                                          "it as UNCALIBRATED", reasons=exc.reasons))
    except ValidationError as exc:
        return Status(422, Error(detail="; ".join(exc.messages)))
    return Status(201, _out(export))


@router.get("exports/{export_id}/bundle.zip", response={200: bytes, 403: Error, 404: Error},
            summary="Download an export again (the stored artifact)",
            openapi_extra={"responses": {200: {"content": {"application/zip": {}}}}})
def download_export(request, export_id: int):
    export = Export.objects.select_related("project").filter(pk=export_id).first()
    if export is None:
        raise Http404("No such export")
    token = getattr(request, "api_token", None)
    if token is not None and token.project_id != export.project_id:
        raise Http404("No such export")
    get_project_for_user(request.user, export.project.slug, need=Need.READ)
    return download_response(export)
