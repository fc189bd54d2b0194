from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from apps.exports.forms import ExportForm
from apps.exports.models import Export
from apps.exports.services import GateRefused, judge_export, stored_status
from apps.judging.models import FINISHED_STATUSES, JudgeRun
from apps.judging.outcome import with_failure_share
from apps.projects.access import Need, get_project_for_user


def get_export_for_user(user, slug: str, export_id: int, *, need: Need = Need.READ):
    access = get_project_for_user(user, slug, need=need)
    export = get_object_or_404(Export.objects.select_related("rubric_version__rubric", "run"),
                               project=access.project, pk=export_id)
    return export, access


def exportable_runs(project):
    return (JudgeRun.objects.filter(project=project, status__in=FINISHED_STATUSES)
            .select_related("rubric_version__rubric", "dataset").order_by("-created_at"))


@login_required
@require_GET
def export_list(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.READ)
    exports = (Export.objects.filter(project=access.project)
               .select_related("rubric_version__rubric", "created_by")
               .defer("artifact", "report"))
    rubric = request.GET.get("rubric", "")
    if rubric:
        exports = exports.filter(rubric_version__rubric__slug=rubric)
    return render(request, "exports/export_list.html", {
        "access": access, "project": access.project, "exports": exports[:200],
        "rubric": rubric, "nav": "exports"})


@login_required
@require_http_methods(["GET", "POST"])
def export_create(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.WRITE)
    runs = with_failure_share(exportable_runs(access.project)[:200])
    initial = {"run": request.GET.get("run", "")}
    form = ExportForm(request.POST or None, initial=initial, runs=runs)
    refused: list[str] = []
    if request.method == "POST" and form.is_valid():
        run = next(r for r in runs if str(r.pk) == form.cleaned_data["run"])
        try:
            export = judge_export(
                run=run, fmt=form.cleaned_data["format"], user=request.user,
                force=form.cleaned_data["force"], model=form.cleaned_data["model"],
                reference_column=form.cleaned_data["reference_column"].strip() or "reference",
            )
        except GateRefused as exc:
            refused = exc.reasons
        except ValidationError as exc:
            # Reasons about a field go beside it; the rest above the form.
            for field, reasons in (exc.message_dict.items() if hasattr(exc, "error_dict")
                                   else [(None, exc.messages)]):
                form.add_error(field if field in form.fields else None, reasons)
        else:
            state = "calibrated" if export.calibrated else "UNCALIBRATED (exported anyway)"
            messages.success(request, f"Exported {export.filename}: {state}.")
            for warning in export.status.warnings:
                messages.warning(request, warning)
            return redirect("export_detail", slug=slug, export_id=export.pk)
    status = 422 if (refused or form.errors) else 200
    return render(request, "exports/export_create.html", {
        "access": access, "project": access.project, "form": form, "refused": refused,
        "nav": "exports"}, status=status)


@login_required
@require_GET
def export_detail(request: HttpRequest, slug: str, export_id: int) -> HttpResponse:
    export, access = get_export_for_user(request.user, slug, export_id)
    return render(request, "exports/export_detail.html", {
        "access": access, "project": access.project, "export": export,
        "status": stored_status(export), "nav": "exports"})


@login_required
@require_GET
def export_download(request: HttpRequest, slug: str, export_id: int) -> HttpResponse:
    export, _ = get_export_for_user(request.user, slug, export_id)
    return download_response(export)


def download_response(export: Export) -> HttpResponse:
    response = HttpResponse(bytes(export.artifact), content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    response["X-Content-SHA256"] = export.artifact_sha256
    return response
