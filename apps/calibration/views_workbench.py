"""The workbench pages: the disagreement view with its bulk actions, the draft editor, the
re-score with live progress and before / after (apps/calibration/workbench.py tells the story).
Every view loads the rubric through get_calibration_for_user (outsiders 404, labellers 403)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from apps.calibration import rescore as rs
from apps.calibration import workbench as wb
from apps.calibration.models import Rescore
from apps.calibration.selectors import get_calibration_for_user
from apps.calibration.splits import split_set_reference_rule
from apps.datasets.models import Dataset
from apps.judging.models import JudgeRun, RunKind
from apps.judging.planning import RunSettings, settings_errors
from apps.projects.access import Need
from apps.rubrics.selectors import current_draft, latest_published, version_content


def _int(value) -> int | None:
    value = str(value or "")
    return int(value) if value.isdigit() and len(value) < 12 else None


def _dataset(request, rubric) -> tuple[list[Dataset], Dataset | None]:
    datasets = list(Dataset.objects.filter(project_id=rubric.project_id, kind=rubric.mode)
                    .order_by("name"))
    chosen = _int(request.GET.get("dataset") or request.POST.get("dataset"))
    dataset = next((d for d in datasets if d.pk == chosen), None)
    if dataset is None and datasets:
        last = (JudgeRun.objects.filter(rubric_version__rubric=rubric).order_by("-created_at")
                .values_list("dataset_id", flat=True).first())
        dataset = next((d for d in datasets if d.pk == last), datasets[0])
    return datasets, dataset


def _default_run(runs: list[JudgeRun], published) -> JudgeRun | None:
    """The newest re-score if any, else the newest live judge of the latest published
    version, else the newest judge at all."""
    rescores = [r for r in runs if hasattr(r, "rescore")]
    if rescores:
        return rescores[0]
    live = [r for r in runs if r.kind == RunKind.LIVE and published is not None
            and r.rubric_version_id == published.pk]
    return (live or runs or [None])[0]


def _filters(request) -> wb.Filters:
    def text(name):
        return request.GET.get(name, "")[:80]

    return wb.Filters(criterion=text("criterion"), annotator=text("annotator"),
                      judge_value=text("judge_value"), human_value=text("human_value"))


def _url(slug: str, rubric, dataset=None, **extra) -> str:
    query = {"dataset": dataset.pk} if dataset is not None else {}
    query.update({k: v for k, v in extra.items() if v not in (None, "")})
    base = reverse("workbench", args=[slug, rubric.slug])
    return f"{base}?{urlencode(query)}" if query else base


def _context(request, rubric, access) -> dict:
    datasets, dataset = _dataset(request, rubric)
    published = latest_published(rubric)
    draft = current_draft(rubric)
    context = {"access": access, "project": access.project, "rubric": rubric,
               "datasets": datasets, "dataset": dataset, "published": published,
               "draft": draft, "nav": "calibration", "runs": [], "run": None}
    if dataset is None:
        return context
    runs = wb.judge_choices(rubric, dataset)
    chosen = _int(request.GET.get("judge"))
    run = next((r for r in runs if r.pk == chosen), None) or _default_run(runs, published)
    page_arg = request.GET.get("page", "1")
    page = int(page_arg) if page_arg.isdigit() and 0 < int(page_arg) < 10**5 else 1
    context.update(runs=runs, run=run, filters=_filters(request))
    if run is not None:
        bench = wb.open_workbench(rubric=rubric, dataset=dataset, run=run, user=request.user)
        context.update(bench=bench, disagreements=wb.disagreements(
            data=bench.data, run=run, rubric=rubric, orders=bench.orders,
            filters=context["filters"], page=page))
    editing = draft or published
    context["editing"] = editing
    context["editing_content"] = version_content(editing) if editing else None
    context["rescore_form"] = _rescore_defaults(runs, run)
    rescore = rs.latest_rescore(rubric, dataset)
    context["rescore"] = _rescore_context(rescore) if rescore else None
    context["page_url"] = _url(access.project.slug, rubric, dataset,
                               judge=run.pk if run else None, **context["filters"].as_query())
    from apps.calibration.views_optimizer import optimizer_context

    context["opt"] = optimizer_context(rubric, dataset, access, runs,
                                        bench=context.get("bench"), editing=editing,
                                        content=context["editing_content"])
    return context


def _rescore_defaults(runs: list[JudgeRun], run: JudgeRun | None) -> dict:
    """The judge a re-score asks: the shown run's model if it was run here, else the newest
    live judge's; an imported judge has no model to ask, so the form asks for one."""
    live = [r for r in runs if r.kind == RunKind.LIVE and r.model]
    base = run if run is not None and run.kind == RunKind.LIVE and run.model else (
        live[0] if live else run)
    settings = rs.settings_from(base) if base is not None else None
    return {"base": base, "model": settings.model if settings else "",
            "api_base": settings.api_base if settings else "",
            "concurrency": settings.concurrency if settings else 16,
            "limit": rs.RESCORE_LIMIT}


def _rescore_context(rescore: Rescore) -> dict:
    state = rs.rescore_state(rescore)
    context = {"object": rescore, "state": state}
    if not rescore.run.is_active and state["evidence"] != "mixed":
        context["compare"] = rs.before_after(rescore)
    return context


@login_required
@require_GET
def workbench(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_calibration_for_user(request.user, slug, rubric_slug)
    context = _context(request, rubric, access)
    template = "calibration/workbench.html"
    if request.htmx and request.htmx.target == "disagreements":
        template += "#disagreements"
    return render(request, template, context)


def _picks(request) -> list[tuple[int, str]]:
    picks = []
    for raw in request.POST.getlist("pick")[:500]:
        item, _, key = str(raw).partition(":")
        if _int(item) is None or not key or len(key) > 60:
            raise ValidationError(f"'{raw[:40]}' is not an item and a criterion.")
        picks.append((int(item), key))
    return picks


def _back(request, slug, rubric, dataset) -> str:
    back = request.POST.get("back", "")
    prefix = reverse("workbench", args=[slug, rubric.slug])
    return back if back.startswith(prefix) else _url(slug, rubric, dataset)


def _leave(request, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@login_required
@require_POST
def workbench_bulk(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_calibration_for_user(request.user, slug, rubric_slug, need=Need.WRITE)
    dataset = get_object_or_404(Dataset, project=access.project, kind=rubric.mode,
                                pk=_int(request.POST.get("dataset")) or 0)
    run = get_object_or_404(JudgeRun, project=access.project, dataset=dataset,
                            rubric_version__rubric=rubric, pk=_int(request.POST.get("judge")) or 0)
    action = request.POST.get("action", "")
    back = _back(request, slug, rubric, dataset)
    try:
        picks = _picks(request)
        bench = wb.open_workbench(rubric=rubric, dataset=dataset, run=run, user=request.user)
        if action == "label":
            if not picks:
                raise ValidationError("Choose at least one item.")
            wb._dev_guard(bench.split, [i for i, _ in picks])
            version = latest_published(rubric)
            if version is None:
                raise ValidationError("Publish a version first: labelling uses a published one.")
            names = sorted(dict.fromkeys(
                dataset.items.filter(pk__in=[i for i, _ in picks])
                .values_list("external_id", flat=True)))
            query = urlencode({"mode": "items", "items": "\n".join(names),
                               "version": version.pk, "dataset": dataset.pk,
                               "name": f"Label again: {len(names)} item(s) from the workbench"})
            return _leave(request, reverse("session_create", args=[slug]) + "?" + query)
        if action == "unclear":
            count = wb.mark_unclear(rubric=rubric, dataset=dataset, view=bench.split, picks=picks,
                                    note=request.POST.get("note", ""), user=request.user)
            messages.success(request, f"Marked {count} item(s) as unclear; the note is on the "
                                      "rubric's list for the next revision.")
        elif action == "example":
            count = wb.add_examples(rubric=rubric, dataset=dataset, view=bench.split,
                                    data=bench.data, picks=picks)
            messages.success(request, f"Added {count} few-shot example(s) to the draft. "
                                      "Re-score to see what they change.")
        else:
            raise ValidationError("Choose an action.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return _leave(request, back)


@login_required
@require_POST
def workbench_edit(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_calibration_for_user(request.user, slug, rubric_slug, need=Need.WRITE)
    _, dataset = _dataset(request, rubric)
    editing = current_draft(rubric) or latest_published(rubric)
    if editing is None:
        raise Http404("This rubric has no version")
    changes = {}
    for criterion in version_content(editing)["criteria"]:
        key = criterion["key"]
        if f"c-{key}-description" not in request.POST:
            continue
        changes[key] = {
            "description": request.POST.get(f"c-{key}-description", "")[:20000],
            "anchors": [request.POST.get(f"c-{key}-anchor-{i}", "")[:20000]
                        for i in range(len(criterion["scale"]["levels"]))],
        }
    try:
        wb.draft_edit(rubric=rubric, task=request.POST.get("task", editing.description)[:20000],
                      criteria=changes)
    except ValidationError as exc:
        messages.error(request, "Not saved: " + " ".join(exc.messages))
    else:
        messages.success(request, "Draft saved. Re-score to see what the change does.")
    return _leave(request, _back(request, slug, rubric, dataset) + "#editor")


@login_required
@require_POST
def workbench_example_remove(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_calibration_for_user(request.user, slug, rubric_slug, need=Need.WRITE)
    _, dataset = _dataset(request, rubric)
    try:
        if rs.active_rescore(rubric) is not None:
            raise ValidationError("A re-score of the draft is running: wait for it first.")
        wb.remove_example(rubric=rubric, key=request.POST.get("key", "")[:60],
                          index=_int(request.POST.get("index")) if _int(
                              request.POST.get("index")) is not None else -1)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Example removed from the draft.")
    return _leave(request, _back(request, slug, rubric, dataset) + "#editor")


@login_required
@require_POST
def workbench_rescore(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_calibration_for_user(request.user, slug, rubric_slug, need=Need.WRITE)
    _, dataset = _dataset(request, rubric)
    if dataset is None:
        raise Http404("No dataset")
    base = get_object_or_404(JudgeRun, project=access.project, dataset=dataset,
                             rubric_version__rubric=rubric, pk=_int(request.POST.get("judge")) or 0)
    back = _back(request, slug, rubric, dataset)
    try:
        concurrency = _int(request.POST.get("concurrency")) or 16
        run_settings = RunSettings(
            model=request.POST.get("model", "").strip()[:200],
            api_base=request.POST.get("api_base", "").strip()[:500],
            temperature=base.temperature if base.kind == RunKind.LIVE else 0.0,
            max_tokens=base.max_tokens if base.kind == RunKind.LIVE else 400,
            samples=base.samples if base.kind == RunKind.LIVE else 1,
            concurrency=concurrency, timeout_s=base.timeout_s if base.kind == RunKind.LIVE
            else 60.0)
        errors = settings_errors(run_settings)
        if errors:
            raise ValidationError([f"{field}: {text}" for field, text in errors.items()])
        limit = _int(request.POST.get("limit"))
        if limit is not None and not 1 <= limit <= 5000:
            raise ValidationError("Re-score from 1 to 5,000 development items.")
        rescore = rs.rescore_start(rubric=rubric, dataset=dataset, base_run=base,
                                   run_settings=run_settings, user=request.user,
                                   limit=limit or rs.RESCORE_LIMIT)
    except ValidationError as exc:
        messages.error(request, "Not started: " + " ".join(exc.messages))
    else:
        messages.success(request, f"Re-scoring the draft on {rescore.item_count:,} development "
                                  "items.")
    return _leave(request, back + "#rescore")


def _rescore_for(request, slug, rubric_slug, rescore_id, need):
    rubric, access = get_calibration_for_user(request.user, slug, rubric_slug, need=need)
    rescore = get_object_or_404(Rescore.objects.select_related("run", "dataset"),
                                rubric=rubric, pk=rescore_id)
    return rubric, access, rescore


@login_required
@require_GET
def workbench_rescore_status(request: HttpRequest, slug: str, rubric_slug: str,
                             rescore_id: int) -> HttpResponse:
    """The re-score's progress (polled while it runs), then its before / after."""
    rubric, access, rescore = _rescore_for(request, slug, rubric_slug, rescore_id, Need.READ)
    runs = wb.judge_choices(rubric, rescore.dataset)
    return render(request, "calibration/workbench.html#rescore", {
        "access": access, "project": access.project, "rubric": rubric,
        "dataset": rescore.dataset, "rescore": _rescore_context(rescore),
        "rescore_form": _rescore_defaults(runs, rescore.base_run),
        "page_url": _url(slug, rubric, rescore.dataset)})


@login_required
@require_POST
def workbench_rescore_cancel(request: HttpRequest, slug: str, rubric_slug: str,
                             rescore_id: int) -> HttpResponse:
    rubric, access, rescore = _rescore_for(request, slug, rubric_slug, rescore_id, Need.WRITE)
    if rs.rescore_cancel(rescore):
        messages.success(request, "Re-score cancelled.")
    else:
        messages.info(request, "The re-score had already ended.")
    return _leave(request, _url(slug, rubric, rescore.dataset) + "#rescore")


@login_required
@require_POST
def workbench_rule(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    """Choose the reference rule of ordinal criteria (until the first look at test)."""
    rubric, access = get_calibration_for_user(request.user, slug, rubric_slug, need=Need.WRITE)
    _, dataset = _dataset(request, rubric)
    from apps.calibration.splits import find_split

    version = latest_published(rubric) or current_draft(rubric)
    split = find_split(version, dataset) if version is not None and dataset is not None else None
    try:
        if split is None:
            raise ValidationError("Nothing is labelled yet: the split does not exist.")
        split_set_reference_rule(split=split, rule=request.POST.get("rule", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Ordinal criteria now use the {split.ordinal_reference} of "
                                  "their annotators as the reference.")
    return _leave(request, _back(request, slug, rubric, dataset))
