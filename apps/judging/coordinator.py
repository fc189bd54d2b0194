"""The run coordinator, on Celery beat: the database is the truth, the broker only a messenger.

Every few seconds (and once when a worker starts, so recovery does not wait for beat alone),
for each active run: re-send batches whose worker stopped beating (killed, lost its message, hit
its time limit) within their delivery budget (delivery.py), top up the dispatch window, and
name the final state of runs whose planned work is all final (outcome.py: completed, completed
with failures, or failed). No chords: nothing here depends on a message arriving.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.judging.models import ACTIVE_STATUSES, BatchStatus, Heartbeat, JudgeBatch, JudgeRun
from apps.judging.outcome import finalize_if_done

log = logging.getLogger(__name__)


def coordinate() -> dict:
    stale = timezone.now() - timezone.timedelta(seconds=settings.JUDGE_BATCH_STALE_S)
    report = {"runs": 0, "resent": 0, "finished": 0}
    # Seen by the run page: it warns when this is three intervals old (beat is not running).
    Heartbeat.objects.update_or_create(name="coordinator", defaults={"at": timezone.now()})
    from apps.judging.planning import dispatch_window

    for run in JudgeRun.objects.filter(status__in=ACTIVE_STATUSES):
        report["runs"] += 1
        if finalize_if_done(run):
            report["finished"] += 1
            continue
        with transaction.atomic():
            lost = list(
                JudgeBatch.objects.filter(run=run)
                .filter(
                    Q(status=BatchStatus.RUNNING, heartbeat_at__lt=stale)
                    | Q(status=BatchStatus.DISPATCHED, dispatched_at__lt=stale)
                )
                .values_list("number", flat=True)
            )
            if lost:
                log.warning("run %s: re-sending stalled batches %s", run.pk, lost)
            sent = dispatch_window(run, resend=lost)
            report["resent"] += len(lost)
            del sent
    return report
