"""API for reward-hacking probe runs: the same service and figures as `judge_probe`."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from ninja import Router, Schema, Status

from apps.api.auth import check_token_scope
from apps.datasets.cli import NoSuchDataset, dataset_by_name
from apps.probes.generate import DEFAULT_PER_PROBE
from apps.probes.measure import probe_results
from apps.probes.selectors import get_probe_run_for_user
from apps.probes.services import probe_run_start
from apps.projects.access import Need
from apps.rubrics.selectors import get_rubric_for_user

router = Router()


class Error(Schema):
    detail: str


class Problems(Schema):
    detail: str
    errors: dict[str, list[str]]


class ProbeIn(Schema):
    rubric: str
    dataset: str
    judge: str
    probes: str | list[str] = "all"
    per_probe: int = DEFAULT_PER_PROBE
    seed: int = 0
    concurrency: int | None = None


@router.post("projects/{slug}/probes", response={201: dict, 403: Error, 404: Error,
                                                 422: Problems},
             summary="Start a probe run (as judge_probe): the judge on the probe suite")
def start_probe_run(request, slug: str, payload: ProbeIn):
    check_token_scope(request, slug)
    rubric, access = get_rubric_for_user(request.user, slug, payload.rubric, need=Need.WRITE)
    try:
        dataset = dataset_by_name(access.project, payload.dataset)
    except NoSuchDataset as exc:
        return Status(404, Error(detail=str(exc)))
    try:
        probe_run = probe_run_start(rubric=rubric, dataset=dataset, judge=payload.judge,
                                    probes=payload.probes, per_probe=payload.per_probe,
                                    seed=payload.seed, concurrency=payload.concurrency,
                                    user=request.user)
    except ValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        return Status(422, Problems(detail="; ".join(f"{k}: {' '.join(v)}"
                                                     for k, v in errors.items()),
                                    errors=errors))
    return Status(201, probe_results(probe_run))


@router.get("projects/{slug}/probes/{probe_run_id}", response={200: dict, 403: Error, 404: Error},
            summary="A probe run's figures and gate (as judge_probe --format json)")
def get_probe_run(request, slug: str, probe_run_id: int):
    check_token_scope(request, slug)
    probe_run, _ = get_probe_run_for_user(request.user, slug, probe_run_id, need=Need.READ)
    return probe_results(probe_run)
