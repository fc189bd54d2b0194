"""API for judge runs and calibration reports: the same services as the pages and commands."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from ninja import Router, Schema, Status

from apps.api.auth import check_token_scope
from apps.calibration.report import PARTS, Thresholds, calibration_report
from apps.calibration.selectors import NotFound, resolve_judge, resolve_version
from apps.datasets.cli import NoSuchDataset, dataset_by_name
from apps.judging import planning
from apps.judging.models import JudgeRun
from apps.judging.progress import run_summary
from apps.judging.selectors import get_run_for_user
from apps.projects.access import Need
from apps.rubrics.selectors import get_rubric_for_user

router = Router()


class Error(Schema):
    detail: str


class RunIn(Schema):
    rubric: str
    dataset: str
    model: str
    version: int | None = None
    name: str = ""
    # The run's own defaults, as the start form and judge_run have them.
    api_base: str = planning.RunSettings.api_base
    temperature: float = planning.RunSettings.temperature
    max_tokens: int = planning.RunSettings.max_tokens
    samples: int = planning.RunSettings.samples
    concurrency: int = planning.RunSettings.concurrency
    timeout_s: float = planning.RunSettings.timeout_s
    use_cache: bool = planning.RunSettings.use_cache
    subset: str = "all"
    sample_size: int | None = None
    seed: int = 0


class RunOut(Schema):
    run: int
    # queued, running, completed, completed_with_failures, failed or cancelled
    status: str
    done: int
    failed: int  # failed or invalid calls; `failures` counts them by kind
    pending: int
    failures: dict[str, int]
    calls: int  # every request sent to the provider: first asks, retries, re-asks
    asked: int  # calls asked at least once
    retried: int  # requests beyond the first of each call
    cached: int
    cost_usd: float | None  # what every answered request cost
    elapsed_s: float
    error: str | None
    planned_calls: int


class Problems(Schema):
    detail: str
    errors: dict[str, list[str]]


def _run_out(run: JudgeRun) -> dict:
    return {**run_summary(run), "planned_calls": run.planned_calls}


@router.post("projects/{slug}/runs", response={201: RunOut, 403: Error, 404: Error,
                                               422: Problems},
             summary="Start a judge run")
def start_run(request, slug: str, payload: RunIn):
    check_token_scope(request, slug)
    rubric, access = get_rubric_for_user(request.user, slug, payload.rubric, need=Need.WRITE)
    try:
        dataset = dataset_by_name(access.project, payload.dataset)
    except NoSuchDataset as exc:
        return Status(404, Error(detail=str(exc)))
    try:
        version = resolve_version(rubric, payload.version)
    except NotFound as exc:
        return Status(422, Problems(detail=str(exc), errors={"version": [str(exc)]}))
    if payload.subset not in ("all", "labelled", "sample"):
        return Status(422, Problems(detail="subset: all, labelled or sample",
                                    errors={"subset": ["all, labelled or sample"]}))
    try:
        run = planning.judge_run_start(
            project=access.project, version=version, dataset=dataset,
            run_settings=planning.RunSettings(
                model=payload.model, api_base=payload.api_base,
                temperature=payload.temperature, max_tokens=payload.max_tokens,
                samples=payload.samples, concurrency=payload.concurrency,
                timeout_s=payload.timeout_s, use_cache=payload.use_cache),
            subset=planning.Subset(kind=payload.subset, size=payload.sample_size,
                                   seed=payload.seed),
            name=payload.name, user=request.user,
        )
    except ValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        return Status(422, Problems(detail="; ".join(f"{k}: {' '.join(v)}"
                                                     for k, v in errors.items()),
                                    errors=errors))
    return Status(201, _run_out(run))


def _run(request, slug: str, run_id: int, need: Need) -> JudgeRun:
    check_token_scope(request, slug)
    run, _ = get_run_for_user(request.user, slug, run_id, need=need)
    return run


@router.get("projects/{slug}/runs/{run_id}", response={200: RunOut, 403: Error, 404: Error},
            summary="A judge run's progress")
def get_run(request, slug: str, run_id: int):
    return _run_out(_run(request, slug, run_id, Need.READ))


@router.post("projects/{slug}/runs/{run_id}/{action}",
             response={200: RunOut, 403: Error, 404: Error, 422: Error},
             summary="Cancel, resume or retry the failed calls of a run")
def run_action(request, slug: str, run_id: int, action: str):
    run = _run(request, slug, run_id, Need.WRITE)
    actions = {"cancel": planning.judge_run_cancel, "resume": planning.judge_run_resume,
               "retry": planning.judge_run_retry_failed}
    if action not in actions:
        return Status(404, Error(detail="action: cancel, resume or retry"))
    try:
        actions[action](run=run)
    except ValidationError as exc:
        return Status(422, Error(detail=" ".join(exc.messages)))
    run.refresh_from_db()
    return _run_out(run)


@router.get("projects/{slug}/rubrics/{rubric_slug}/calibration",
            response={200: dict, 403: Error, 404: Error, 422: Error},
            summary="Calibration report (as calibration_report --format json)")
def calibration(request, slug: str, rubric_slug: str, dataset: str, judge: str | None = None,
                version: int | None = None, part: str = "test"):
    check_token_scope(request, slug)
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.READ)
    try:
        chosen = dataset_by_name(access.project, dataset)
        v = resolve_version(rubric, version)
        run = resolve_judge(v, chosen, judge)
    except (NotFound, NoSuchDataset) as exc:
        return Status(404, Error(detail=str(exc)))
    if part not in PARTS:
        return Status(422, Error(detail=f"part: one of {', '.join(PARTS)}"))
    return calibration_report(version=v, dataset=chosen, run=run,
                              thresholds=Thresholds.for_project(access.project), part=part,
                              user=request.user, source="api")
