"""Celery tasks: thin, ids only, the work is in services (STYLE.md 4)."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_init, worker_process_shutdown, worker_ready
from django.db import InterfaceError, OperationalError


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def run_judge_batch(self, run_id: int, batch_number: int) -> str:
    from apps.judging.executor import run_batch

    return run_batch(run_id, batch_number, lease=self.request.id)


@shared_task(ignore_result=True)
def coordinate_runs() -> dict:
    from apps.judging.coordinator import coordinate

    return coordinate()


@worker_init.connect
def _import_litellm_before_forking(**kwargs) -> None:
    # litellm takes seconds to import; doing it once in the parent means every pool process
    # starts with it loaded, instead of the first batch of each process paying for it.
    from apps.judging.provider import _litellm

    _litellm()


@worker_process_shutdown.connect
def _close_the_process_loop(**kwargs) -> None:
    from apps.judging.executor import close_process_loop

    close_process_loop()


@worker_ready.connect
def _pick_up_stale_batches(sender=None, **kwargs) -> None:
    # A worker that starts looks for work left by a dead one at once, without waiting for beat
    # (which may not run at all): the coordinator re-sends stale batches.
    try:
        coordinate_runs.delay()
    except Exception:  # a broker hiccup at start-up must not stop the worker
        pass
