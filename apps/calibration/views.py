from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from apps.calibration.charts import heat_rows, kappa_bar
from apps.calibration.disagreements import disagreements
from apps.calibration.report import (
    PARTS,
    Inputs,
    Thresholds,
    calibration_report,
    choose_scope,
    judge_comparison,
    judges_for,
    load_inputs,
    scoped,
)
from apps.calibration.selectors import get_calibration_for_user
from apps.calibration.trend import kappa_trend
from apps.datasets.models import Dataset
from apps.judging.models import FINISHED_STATUSES, JudgeRun
from apps.judging.outcome import with_failure_share
from apps.projects.access import Need
from apps.rubrics.models import Rubric
from apps.rubrics.services import rubric_note_add


def _int(request, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() and len(value) < 12 else None


def _choose(request, rubric: Rubric, project):
    versions = list(rubric.versions.filter(published_at__isnull=False).order_by("-number"))
    if not versions:
        versions = list(rubric.versions.order_by("-number"))
    if not versions:
        raise Http404("This rubric has no version")
    number = _int(request, "version")
    version = next((v for v in versions if v.number == number), versions[0])
    datasets = list(Dataset.objects.filter(project=project, kind=rubric.mode).order_by("name"))
    dataset_id = _int(request, "dataset")
    runs_everywhere = JudgeRun.objects.filter(rubric_version=version)
    dataset = next((d for d in datasets if d.pk == dataset_id), None)
    if dataset is None and len(datasets) == 1:
        dataset = datasets[0]
    elif dataset is None:
        # Default to the dataset this version was judged on most recently.
        latest = runs_everywhere.order_by("-created_at").values_list("dataset_id", flat=True)
        first = latest.first()
        dataset = next((d for d in datasets if d.pk == first), datasets[0] if datasets else None)
    # Each judge with its failed-call share, shown beside it (one query for all).
    judges = with_failure_share(judges_for(version, dataset)) if dataset else []
    run_id = _int(request, "judge")
    run = next((r for r in judges if r.pk == run_id), None)
    if run is None and judges:
        finished = [r for r in judges if r.status in FINISHED_STATUSES]
        run = finished[0] if finished else judges[0]
    compare_id = _int(request, "compare")
    compare = next((r for r in judges if r.pk == compare_id and r != run), None)
    return versions, version, datasets, dataset, judges, run, compare


@login_required
@require_GET
def calibration_dashboard(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_calibration_for_user(request.user, slug, rubric_slug)
    versions, version, datasets, dataset, judges, run, compare = _choose(
        request, rubric, access.project)
    context = {"access": access, "project": access.project, "rubric": rubric,
               "versions": versions, "version": version, "datasets": datasets,
               "dataset": dataset, "judges": judges, "run": run, "compare": compare,
               "nav": "calibration"}
    part = _part(request)
    context["part"] = part
    if dataset is not None and run is not None:
        thresholds = Thresholds.for_project(access.project)
        inputs = load_inputs(version, dataset, run, user=request.user)
        report = calibration_report(version=version, dataset=dataset, run=run,
                                    thresholds=thresholds, inputs=inputs, part=part,
                                    user=request.user, source="page",
                                    also_seen=(compare,) if compare is not None else ())
        cards = []
        other = None
        other_inputs = None
        if compare is not None:
            other_inputs = _with_other_judge(inputs, compare)
            other = calibration_report(
                version=version, dataset=dataset, run=compare, thresholds=thresholds,
                with_bias=False, inputs=other_inputs, part=part, looks=report["test_looks"])
        comparison = {}
        if compare is not None:
            comparison = judge_comparison(inputs, other_inputs, choose_scope(
                inputs.split, part, thresholds))
        for key, c in report["criteria"].items():
            cards.append({
                "key": key, "c": c,
                "bar": kappa_bar(c["kappa"], c["kappa_ci95"], c["human_alpha"],
                                 thresholds.min_kappa, thresholds.min_kappa_lower),
                "heat": heat_rows(c["confusion_matrix"]),
                "bias": (report.get("bias") or {}).get(key, {}),
                "other": other["criteria"][key] if other else None,
                "difference": comparison.get(key),
                "annotators": sorted(c["kappa_vs_annotators"].items()),
            })
        page_arg = request.GET.get("page", "1")
        page = int(page_arg) if page_arg.isdigit() and 0 < int(page_arg) < 10**5 else 1
        # Tuning aids (the trend across versions, the disagreements) read development items
        # only: looking at test items there would be tuning on them.
        dev = scoped(inputs, choose_scope(inputs.split, "dev", thresholds))[0]
        context.update({
            "report": report, "cards": cards, "other": other, "thresholds": thresholds,
            "trend": kappa_trend(rubric=rubric, dataset=dataset, judge_name=run.name,
                                 current=(run, dev),
                                 items=inputs.split.dev_ids if inputs.split else set()),
            "disagreements": disagreements(data=dev, run=run,
                                           criterion=request.GET.get("criterion") or None,
                                           page=page),
        })
    template = "calibration/dashboard.html"
    if request.htmx and request.htmx.target == "disagreements":
        template += "#disagreements"
    return render(request, template, context)


def _with_other_judge(inputs: Inputs, run) -> Inputs:
    """The same labels and split with another judge's verdicts: one query instead of three."""
    from apps.calibration.data import attach_judge

    other = [d.without_judge() for d in inputs.data]
    attach_judge(other, run)
    return Inputs(other, {}, inputs.split)


def _part(request) -> str:
    part = request.GET.get("part", "test")
    return part if part in PARTS else "test"


@login_required
@require_GET
def calibration_json(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_calibration_for_user(request.user, slug, rubric_slug)
    _, version, _, dataset, _, run, compare = _choose(request, rubric, access.project)
    if dataset is None or run is None:
        raise Http404("No judge to report on")
    thresholds = Thresholds.for_project(access.project)
    inputs = load_inputs(version, dataset, run, user=request.user)
    part = _part(request)
    report = calibration_report(version=version, dataset=dataset, run=run, inputs=inputs,
                                thresholds=thresholds, part=part, user=request.user,
                                source="json", also_seen=(compare,) if compare else ())
    if compare is not None:
        report["comparison"] = {
            "with": {"name": compare.name, "run": compare.pk},
            "criteria": judge_comparison(inputs, _with_other_judge(inputs, compare),
                                         choose_scope(inputs.split, part, thresholds)),
        }
    return JsonResponse(report, json_dumps_params={"indent": 2})


@login_required
@require_POST
def calibration_note(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    """Note a disagreement for the next revision of the rubric (collected on its draft)."""
    rubric, access = get_calibration_for_user(request.user, slug, rubric_slug, need=Need.WRITE)
    try:
        rubric_note_add(rubric=rubric, text=request.POST.get("text", ""),
                        criterion_key=request.POST.get("criterion", ""),
                        source=request.POST.get("source", ""), user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Noted for the next revision (shown on the rubric's draft).")
    back = request.POST.get("back", "")
    prefix = reverse("calibration_dashboard", args=[slug, rubric.slug])
    return redirect(back if back.startswith(prefix) else prefix)
