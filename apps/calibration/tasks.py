"""Celery tasks of calibration: thin, ids only (STYLE.md 4)."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def run_optimizer(job_id: int) -> str:
    from apps.calibration.models import OptimizerJob
    from apps.calibration.optimizer import optimizer_run

    job = OptimizerJob.objects.filter(pk=job_id).first()
    return "missing" if job is None else optimizer_run(job)
