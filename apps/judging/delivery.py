"""The delivery budget of a batch, and the queued-calls cap on re-sent calls (docs/decisions/0006).

A batch is sent again when its worker died, its message was lost, or it ended with calls still
pending. Sending again is right once or twice; sending forever is how a poison answer once
re-billed a batch every 70 seconds. So, each time a batch is sent again:

1. Progress is measured: pending calls now against pending calls when it was last sent. A
   delivery that wrote nothing is a stalled one.
2. After JUDGE_BATCH_MAX_DELIVERIES stalled deliveries in a row, the batch is not sent again:
   its pending calls are marked failed (`delivery_budget`) with the reason, the run's error says
   so, and the run ends by the usual rule (apps/judging/outcome.py).
3. The calls it would re-queue count against the project's queued-calls cap, as new calls do
   (JudgeRun.requeued_calls): when the cap would be passed, the run fails instead of looping.

Called inside the coordinator's transaction or on its own; each step is its own transaction.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Sum
from django.utils import timezone

from apps.judging.models import (
    ACTIVE_STATUSES,
    BatchStatus,
    JudgeBatch,
    JudgeRun,
    Judgment,
    JudgmentStatus,
    RunStatus,
)
from apps.projects.models import Project

log = logging.getLogger(__name__)


def pending_by_batch(run: JudgeRun, numbers: list[int]) -> dict[int, int]:
    rows = (Judgment.objects.filter(run=run, batch__in=numbers, status=JudgmentStatus.PENDING)
            .values("batch").annotate(n=Count("id")).values_list("batch", "n"))
    return dict(rows)


def record_dispatch(run: JudgeRun, numbers: list[int], pending: dict[int, int]) -> None:
    """Remember how much each batch had pending when it was sent (first sends)."""
    for number in numbers:
        JudgeBatch.objects.filter(run=run, number=number).update(
            pending_at_dispatch=pending.get(number, 0))


def redeliveries(run: JudgeRun, numbers: list[int]) -> tuple[list[int], dict[int, int]]:
    """The batches of `numbers` that may be sent again (with their pending counts); the others
    have spent their budget and are closed here, or the run has been failed for its cap."""
    if not numbers:
        return [], {}
    pending = pending_by_batch(run, numbers)
    budget = settings.JUDGE_BATCH_MAX_DELIVERIES
    keep: list[int] = []
    requeued = 0
    with transaction.atomic():
        for batch in JudgeBatch.objects.select_for_update().filter(run=run, number__in=numbers):
            left = pending.get(batch.number, 0)
            if left == 0:  # nothing to ask again: the delivery only builds verdicts
                keep.append(batch.number)
                continue
            # Not sent since the run started or was resumed (the cap counted it then).
            sent_before = batch.pending_at_dispatch is not None
            stalled = (batch.stalled_deliveries + 1
                       if sent_before and left >= batch.pending_at_dispatch else 0)
            if stalled >= budget:
                _close(run, batch, left, stalled)
                continue
            JudgeBatch.objects.filter(pk=batch.pk).update(stalled_deliveries=stalled,
                                                          pending_at_dispatch=left)
            keep.append(batch.number)
            requeued += left if sent_before else 0
        if requeued and not _requeue_fits(run, requeued):
            return [], pending
    return keep, pending


def _close(run: JudgeRun, batch: JudgeBatch, left: int, stalled: int) -> None:
    reason = (f"batch {batch.number} was delivered {stalled} times without progress (its "
              "worker died or its writes failed each time); it is not sent again")
    log.warning("run %s: %s; %s pending calls marked failed", run.pk, reason, left)
    Judgment.objects.filter(run=run, batch=batch.number, status=JudgmentStatus.PENDING).update(
        status=JudgmentStatus.FAILED, error_kind="delivery_budget", error_message=reason,
        finished_at=timezone.now())
    JudgeBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.DONE, lease="",
                                                  heartbeat_at=None, stalled_deliveries=stalled)
    _add_error(run, f"{reason}: its {left:,} pending calls were marked failed")


def _add_error(run: JudgeRun, text: str) -> None:
    current = JudgeRun.objects.filter(pk=run.pk).values_list("error_message", flat=True).first()
    JudgeRun.objects.filter(pk=run.pk).update(
        error_message="; ".join(filter(None, [current, text]))[:4000])


def queued_calls(project: Project) -> int:
    """What counts against the project's cap: calls pending in active runs, plus the calls
    those runs have queued again by re-sending batches."""
    active = JudgeRun.objects.filter(project=project, status__in=ACTIVE_STATUSES)
    pending = Judgment.objects.filter(run__in=active, status=JudgmentStatus.PENDING).count()
    requeued = active.aggregate(n=Sum("requeued_calls"))["n"] or 0
    return pending + requeued


def _requeue_fits(run: JudgeRun, calls: int) -> bool:
    """Count `calls` re-queued calls against the cap (under the project's row lock), or fail
    the run when they would pass it."""
    project = Project.objects.select_for_update(no_key=True).get(pk=run.project_id)
    cap = project.queued_calls_cap()
    queued = queued_calls(project)
    if queued + calls > cap:
        reason = (f"sending {calls:,} unfinished calls again would pass the project's "
                  f"queued-calls cap of {cap:,} ({queued:,} queued); the run stops here")
        log.warning("run %s: %s", run.pk, reason)
        _add_error(run, reason)
        JudgeRun.objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES).update(
            status=RunStatus.FAILED, finished_at=timezone.now())
        return False
    JudgeRun.objects.filter(pk=run.pk).update(requeued_calls=F("requeued_calls") + calls)
    return True
