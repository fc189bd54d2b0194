"""The workbench's optimizer section: the form with the budget of each choice of rounds, the
latest job and its proposals (polled while it runs), stop, and "make this proposal the draft".
Every view loads the rubric through get_calibration_for_user (outsiders 404, labellers 403)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from apps.calibration import optimizer as opt
from apps.calibration import rescore as rs
from apps.calibration import workbench as wb
from apps.calibration.models import OptimizerJob
from apps.calibration.report import load_inputs
from apps.calibration.scoring import JudgeSettings
from apps.calibration.selectors import get_calibration_for_user
from apps.calibration.views_workbench import (
    _back,
    _dataset,
    _int,
    _leave,
    _rescore_defaults,
    _url,
)
from apps.judging.planning import RunSettings, settings_errors
from apps.projects.access import Need
from apps.rubrics import scales
from apps.rubrics.selectors import current_draft, latest_published, version_content


def optimizer_context(rubric, dataset, access, runs, bench=None, editing=None,
                       content=None) -> dict:
    """The latest job with its proposals, and the form's budget per number of rounds (from
    the workbench's labels when the draft's criteria are the same, else read afresh)."""
    job = (OptimizerJob.objects.filter(rubric=rubric, dataset=dataset)
           .prefetch_related("proposals").first())
    context = {"job": job, "best": opt.best_proposal(job) if job else None,
               "stalled": _stalled(job)}
    editing = editing or current_draft(rubric) or latest_published(rubric)
    defaults = _rescore_defaults(runs, None)
    context["defaults"] = defaults
    if editing is not None and dataset.texts_available:
        content = content or version_content(editing)
        same = bench is not None and _signatures(content) == _signatures(
            {"criteria": [d.criterion for d in bench.data]})
        if same:
            split, data = bench.split, bench.data
        else:
            inputs = load_inputs(editing, dataset, None)
            split, data = inputs.split, inputs.data
        items = rs.rescore_items(split, data, limit=rs.RESCORE_LIMIT)
        samples = defaults["base"].samples if defaults["base"] is not None else 1
        context["items"] = len(items)
        context["budgets"] = [(r, opt.budget_for(n_items=len(items), content=content, rounds=r,
                                                 samples=samples))
                              for r in range(1, opt.MAX_ROUNDS + 1)]
    return context


def _signatures(content: dict) -> list[tuple[str, str]]:
    return [(c["key"], scales.scale_signature(c["scale"])) for c in content["criteria"]]


def _stalled(job) -> bool:
    from django.utils import timezone

    if job is None or not job.is_active or job.heartbeat_at is None:
        return False
    return (timezone.now() - job.heartbeat_at).total_seconds() > 300


@login_required
@require_GET
def workbench_optimizer(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    """The optimizer's section: the form with its budget, the latest job and its proposals
    (polled while the job runs)."""
    rubric, access = get_calibration_for_user(request.user, slug, rubric_slug)
    _, dataset = _dataset(request, rubric)
    if dataset is None:
        raise Http404("No dataset")
    runs = wb.judge_choices(rubric, dataset)
    return render(request, "calibration/_optimizer.html", {
        "access": access, "project": access.project, "rubric": rubric, "dataset": dataset,
        "opt": optimizer_context(rubric, dataset, access, runs),
        "page_url": _url(slug, rubric, dataset)})


@login_required
@require_POST
def workbench_optimize(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_calibration_for_user(request.user, slug, rubric_slug, need=Need.WRITE)
    _, dataset = _dataset(request, rubric)
    if dataset is None:
        raise Http404("No dataset")
    back = _back(request, slug, rubric, dataset)
    try:
        run_settings = RunSettings(model=request.POST.get("model", "").strip()[:200],
                                   api_base=request.POST.get("api_base", "").strip()[:500],
                                   concurrency=_int(request.POST.get("concurrency")) or 16)
        errors = settings_errors(run_settings)
        if errors:
            raise ValidationError([f"{field}: {text}" for field, text in errors.items()])
        rounds = _int(request.POST.get("rounds"))
        if rounds is None:
            raise ValidationError("Choose the number of rounds.")
        job = opt.optimizer_start(
            rubric=rubric, dataset=dataset, rounds=rounds, limit=rs.RESCORE_LIMIT,
            user=request.user,
            settings=JudgeSettings(model=run_settings.model, api_base=run_settings.api_base,
                                   concurrency=run_settings.concurrency))
    except ValidationError as exc:
        messages.error(request, "Not started: " + " ".join(exc.messages))
    else:
        messages.success(request, f"The optimizer is working on {len(job.item_ids):,} "
                                  f"development items, within {job.budget_calls:,} calls.")
    return _leave(request, back + "#optimizer")


def _job_for(request, slug, rubric_slug, job_id, need):
    rubric, access = get_calibration_for_user(request.user, slug, rubric_slug, need=need)
    return rubric, access, get_object_or_404(OptimizerJob, rubric=rubric, pk=job_id)


@login_required
@require_POST
def workbench_optimizer_cancel(request: HttpRequest, slug: str, rubric_slug: str,
                               optimizer_id: int) -> HttpResponse:
    rubric, access, job = _job_for(request, slug, rubric_slug, optimizer_id, Need.WRITE)
    if opt.optimizer_cancel(job):
        messages.success(request, "The optimizer stops after the call in progress.")
    else:
        messages.info(request, "The optimizer had already ended.")
    return _leave(request, _url(slug, rubric, job.dataset) + "#optimizer")


@login_required
@require_POST
def workbench_proposal_apply(request: HttpRequest, slug: str, rubric_slug: str,
                             optimizer_id: int) -> HttpResponse:
    rubric, access, job = _job_for(request, slug, rubric_slug, optimizer_id, Need.WRITE)
    proposal = get_object_or_404(job.proposals, pk=_int(request.POST.get("proposal")) or 0)
    try:
        opt.proposal_apply(proposal=proposal, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "The proposal is now the draft. Publish it on the rubric's "
                                  "page, run the judge, and check it on the test split.")
    return _leave(request, _url(slug, rubric, job.dataset) + "#editor")
