"""Reads about judge runs: progress, throughput, tokens, cost, errors (for pages, command, API)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Case, Count, F, FloatField, IntegerField, Min, Q, Sum, When
from django.db.models.functions import Greatest
from django.utils import timezone

from apps.judging.models import JudgeRun, Judgment, JudgmentStatus

RATE_WINDOW_S = 10


@dataclass
class Progress:
    planned: int
    done: int
    invalid: int
    failed: int
    pending: int
    cached: int
    # Every request sent to the provider for this run: first asks, retries, re-asks after a
    # worker died, resumes and "retry failed" (apps/judging/writer.py:write_counters).
    calls: int
    asked: int  # keys asked at least once
    retried: int  # requests beyond the first of each key
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # None while any answered call has no known price
    calls_per_s: float
    elapsed_s: float
    eta_s: float | None
    errors: list[dict] = field(default_factory=list)
    # While the run is active: seconds since the coordinator (Celery beat) last ran, None when
    # it never ran; the page warns once it missed three intervals.
    coordinator_silent_s: float | None = None
    coordinator_stale: bool = False

    @property
    def finished(self) -> int:
        return self.done + self.invalid + self.failed

    @property
    def percent(self) -> float:
        return 100.0 * self.finished / self.planned if self.planned else 100.0

    @property
    def failed_total(self) -> int:
        return self.invalid + self.failed

    @property
    def failed_share(self) -> float:
        """Failed or invalid calls, in percent of the planned ones."""
        return 100.0 * self.failed_total / self.planned if self.planned else 0.0


def run_progress(run: JudgeRun) -> Progress:
    judgments = Judgment.objects.filter(run=run)
    counts = dict(judgments.values("status").annotate(n=Count("id")).values_list("status", "n"))
    since = timezone.now() - timezone.timedelta(seconds=RATE_WINDOW_S)
    totals = judgments.aggregate(
        n_cached=Count("id", filter=Q(cached=True)),
        # Rows written before requests were counted have only attempts: Greatest reads both.
        n_calls=Sum(Greatest("requests", "attempts", output_field=IntegerField())),
        n_asked=Count("id", filter=Q(requests__gt=0) | Q(attempts__gt=0, cached=False)),
        prompt=Sum("prompt_tokens", filter=Q(cached=False)),
        completion=Sum("completion_tokens", filter=Q(cached=False)),
        # Every answer paid for, also those asked again; older rows: the last answer's cost.
        cost=Sum(Case(When(paid_cost_usd__isnull=False, then=F("paid_cost_usd")),
                      When(cached=False, then=F("cost_usd")), default=None,
                      output_field=FloatField())),
        # An invalid answer was paid for too: without a price it makes the total unknown.
        unpriced=Count("id", filter=Q(cached=False, cost_usd__isnull=True,
                                      status__in=(JudgmentStatus.DONE, JudgmentStatus.INVALID))),
        recent=Count("id", filter=Q(finished_at__gte=since)),
    )
    errors = list(
        judgments.filter(status__in=(JudgmentStatus.INVALID, JudgmentStatus.FAILED))
        .values("error_kind").annotate(n=Count("id"), example=Min("error_message"),
                                       example_id=Min("id"))
        .order_by("-n")
    )
    pending = counts.get(JudgmentStatus.PENDING, 0)
    started = run.started_at or run.created_at
    end = run.finished_at or timezone.now()
    elapsed = max(0.0, (end - started).total_seconds())
    rate = totals["recent"] / RATE_WINDOW_S if run.is_active else 0.0
    eta = pending / rate if rate > 0 and run.is_active else None
    cost = None if totals["unpriced"] else float(totals["cost"] or 0.0)
    silent, stale = coordinator_silence() if run.is_active else (None, False)
    return Progress(
        planned=run.planned_calls, done=counts.get(JudgmentStatus.DONE, 0),
        invalid=counts.get(JudgmentStatus.INVALID, 0), failed=counts.get(JudgmentStatus.FAILED, 0),
        pending=pending, cached=totals["n_cached"], calls=totals["n_calls"] or 0,
        asked=totals["n_asked"], retried=max(0, (totals["n_calls"] or 0) - totals["n_asked"]),
        prompt_tokens=totals["prompt"] or 0, completion_tokens=totals["completion"] or 0,
        cost_usd=cost, calls_per_s=rate, elapsed_s=elapsed, eta_s=eta, errors=errors,
        coordinator_silent_s=silent, coordinator_stale=stale,
    )


def coordinator_silence() -> tuple[float | None, bool]:
    """(seconds since the coordinator last ran or None, whether that is over 3 intervals)."""
    from django.conf import settings

    from apps.judging.models import Heartbeat

    at = Heartbeat.objects.filter(name="coordinator").values_list("at", flat=True).first()
    if at is None:
        return None, True
    silent = max(0.0, (timezone.now() - at).total_seconds())
    return silent, silent > 3 * settings.CELERY_COORDINATOR_INTERVAL_S


def run_summary(run: JudgeRun) -> dict:
    """The JSON object `judge_run --wait` prints (and the API returns)."""
    p = run_progress(run)
    return {
        "run": run.pk, "status": run.status, "planned": p.planned, "done": p.done,
        "failed": p.failed_total, "pending": p.pending,
        "failures": {e["error_kind"] or "unknown": e["n"] for e in p.errors},
        "calls": p.calls, "asked": p.asked, "retried": p.retried, "cached": p.cached,
        "cost_usd": None if p.cost_usd is None else round(p.cost_usd, 6),
        "elapsed_s": round(p.elapsed_s, 3), "error": run.error_message or None,
    }


def batches_at_work(run: JudgeRun) -> int:
    """Batches a live worker still holds (its heartbeat is fresh): their answers in flight are
    not written yet. A dead worker's batch stops counting once its heartbeat is stale."""
    from django.conf import settings

    from apps.judging.models import BatchStatus, JudgeBatch

    fresh = timezone.now() - timezone.timedelta(seconds=settings.JUDGE_BATCH_STALE_S)
    return JudgeBatch.objects.filter(run=run, status=BatchStatus.RUNNING,
                                     heartbeat_at__gte=fresh).count()
