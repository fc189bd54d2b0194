from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.datasets.models import Dataset
from apps.judging import planning
from apps.judging.forms import JudgeRunForm
from apps.judging.models import JudgeConfig, JudgeRun, Judgment, JudgmentStatus, RunKind
from apps.judging.progress import run_progress
from apps.judging.selectors import get_run_for_user
from apps.projects.access import Need, get_project_for_user
from apps.rubrics.models import RubricVersion

RESULTS_PAGE = 50


@login_required
@require_GET
def run_list(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.READ)
    runs = JudgeRun.objects.filter(project=access.project).select_related(
        "rubric_version__rubric", "dataset")
    rubric = request.GET.get("rubric", "")
    if rubric:
        runs = runs.filter(rubric_version__rubric__slug=rubric)
    return render(request, "judging/run_list.html", {
        "access": access, "project": access.project, "runs": runs[:200], "rubric": rubric,
        "nav": "runs",
    })


def _form(access, data=None, initial=None) -> JudgeRunForm:
    versions = (RubricVersion.objects.filter(rubric__project=access.project,
                                             published_at__isnull=False)
                .select_related("rubric").order_by("rubric__name", "-number"))
    datasets = Dataset.objects.filter(project=access.project, texts_available=True)
    return JudgeRunForm(data, initial=initial, versions=versions, datasets=datasets)


def _chosen(access, form) -> tuple[RubricVersion, Dataset]:
    version = RubricVersion.objects.select_related("rubric").get(
        pk=int(form.cleaned_data["version"]), rubric__project=access.project)
    dataset = Dataset.objects.get(pk=int(form.cleaned_data["dataset"]), project=access.project)
    return version, dataset


@login_required
@require_http_methods(["GET", "POST"])
def run_start(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.WRITE)
    initial = {}
    if request.method == "GET":
        for key in ("version", "dataset"):
            if request.GET.get(key, "").isdigit():
                initial[key] = request.GET[key]
        config_id = request.GET.get("config", "")
        config = (JudgeConfig.objects.filter(project=access.project, pk=int(config_id)).first()
                  if config_id.isdigit() else None)
        if config is not None:  # start again from a saved judge
            initial.update(version=str(config.rubric_version_id), name=config.name,
                           model=config.model, api_base=config.api_base,
                           temperature=config.temperature, max_tokens=config.max_tokens,
                           samples=config.samples, concurrency=config.concurrency,
                           timeout_s=config.timeout_s)
    form = _form(access, request.POST or None, initial=initial)
    saved = (JudgeConfig.objects.filter(project=access.project)
             .select_related("rubric_version__rubric").order_by("name")[:50])
    estimate = None
    if request.method == "POST" and form.is_valid():
        version, dataset = _chosen(access, form)
        try:
            if "_estimate" in request.POST:
                run_settings = form.to_run_settings()
                ids = planning.select_items(dataset, version, form.to_subset())
                estimate = planning.estimate(version=version, dataset=dataset, item_ids=ids,
                                             run_settings=run_settings)
                # Say now what starting would refuse (a missing key above all), not later.
                for field, error in planning.settings_errors(run_settings).items():
                    form.add_error(field if field in form.fields else None, error)
            else:
                run = planning.judge_run_start(
                    project=access.project, version=version, dataset=dataset,
                    run_settings=form.to_run_settings(), subset=form.to_subset(),
                    name=form.cleaned_data.get("name") or "", user=request.user,
                )
                messages.success(request, f"Run #{run.pk} started: {run.planned_calls:,} calls.")
                return redirect("run_detail", slug=slug, run_id=run.pk)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
    status = 422 if form.errors else 200
    template = "judging/run_start.html"
    estimate_errors = []
    if request.htmx and "_estimate" in request.POST:
        # The partial replaces only the estimate box: the form's errors must show up in it,
        # or the button would seem to do nothing.
        template += "#estimate"
        estimate_errors = [error for errors in form.errors.values() for error in errors]
    return render(request, template, {
        "access": access, "project": access.project, "form": form, "estimate": estimate,
        "estimate_errors": estimate_errors, "saved": saved, "nav": "runs",
    }, status=status)


def _results(run: JudgeRun, request) -> dict:
    status = request.GET.get("status", "")
    judgments = Judgment.objects.filter(run=run).select_related("item").only(
        "id", "criterion_key", "sample", "order", "status", "value", "rationale", "error_kind",
        "error_message", "cached", "attempts", "item__external_id", "item__id",
        "item__dataset_id")
    if status in JudgmentStatus.values:
        judgments = judgments.filter(status=status)
    page_arg = request.GET.get("page", "1")
    page = int(page_arg) if page_arg.isdigit() and 0 < int(page_arg) < 10**6 else 1
    window = list(judgments.order_by("id")[(page - 1) * RESULTS_PAGE: page * RESULTS_PAGE + 1])
    return {"judgments": window[:RESULTS_PAGE], "page": page, "has_next": len(window) >
            RESULTS_PAGE, "status_filter": status, "statuses": JudgmentStatus.choices}


@login_required
@require_GET
def run_detail(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    run, access = get_run_for_user(request.user, slug, run_id, need=Need.READ)
    context = {"access": access, "project": access.project, "run": run,
               "progress": run_progress(run), "nav": "runs", **_results(run, request)}
    template = "judging/run_detail.html"
    if request.htmx and request.htmx.target == "results":
        template += "#results"
    return render(request, template, context)


@login_required
@require_GET
def run_progress_partial(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    run, access = get_run_for_user(request.user, slug, run_id, need=Need.READ)
    response = render(request, "judging/run_detail.html#progress", {
        "access": access, "project": access.project, "run": run,
        "progress": run_progress(run),
    })
    if not run.is_active and request.headers.get("HX-Request"):
        # The run just ended: reload the results below the progress bar once.
        response["HX-Trigger"] = "run-finished"
    return response


def _action(request, slug, run_id, action, done_message):
    run, access = get_run_for_user(request.user, slug, run_id, need=Need.WRITE)
    if run.kind != RunKind.LIVE:
        raise Http404("Imported runs have no actions")
    try:
        result = action(run=run)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, done_message(result))
    return redirect("run_detail", slug=slug, run_id=run.pk)


@login_required
@require_POST
def run_cancel(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    return _action(request, slug, run_id, planning.judge_run_cancel,
                   lambda changed: "Cancelled: no new calls start." if changed
                   else "The run had already ended.")


@login_required
@require_POST
def run_resume(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    return _action(request, slug, run_id, planning.judge_run_resume,
                   lambda n: f"Resumed: {n} batch(es) with missing work sent again." if n
                   else "Nothing is missing: every call has a result.")


@login_required
@require_POST
def run_retry_failed(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    return _action(request, slug, run_id, planning.judge_run_retry_failed,
                   lambda n: f"{n} failed or invalid call(s) sent again." if n
                   else "No failed calls to retry.")


@login_required
@require_GET
def judgment_raw(request: HttpRequest, slug: str, run_id: int, judgment_id: int):
    run, access = get_run_for_user(request.user, slug, run_id, need=Need.READ)
    judgment = Judgment.objects.filter(run=run, pk=judgment_id).select_related("item").first()
    if judgment is None:
        raise Http404("No such judgment")
    return render(request, "judging/judgment_raw.html", {
        "access": access, "project": access.project, "run": run, "judgment": judgment,
    })
