"""Run-wide concurrency and per-model rate limits, shared by every worker (docs/decisions/0010).

A run's `concurrency` is a cap on calls in flight across all worker processes, not per process.
Each worker's session on the run holds a share of it, recorded as a JudgeSession row:

1. A session asks for slots with what it has in flight and what it could start (`demand`).
   The run's row is locked, so two sessions take turns.
2. It may hold what the other live sessions leave free; while another session wants more than
   it holds, no session is granted more than a fair share (cap / live sessions). A new session
   starts with at most half the cap, so that a second one arriving at once finds room.
3. A session that is granted less than it has in flight starts nothing until its calls drain:
   its row keeps counting the calls still in flight (`held`), so the sum of `held` over live
   sessions never exceeds the cap.
4. A session that stops beating (its worker died) no longer counts after JUDGE_SLOT_LEASE_S.

Rate limits (JUDGE_MODEL_RPM) are fixed one-minute windows per model in the database: a session
takes a few request tokens at a time, so the limit holds across every worker of a deployment.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.judging.models import JudgeRun, JudgeSession, RateWindow


def slots_claim(*, run_id: int, lease: str, in_flight: int, demand: int,
                with_others: bool = False):
    """How many calls this session may have in flight now (0 when the run is not active);
    `with_others`: (that, whether another live session shares the run)."""
    now = timezone.now()
    live_since = now - timezone.timedelta(seconds=settings.JUDGE_SLOT_LEASE_S)
    with transaction.atomic():
        row = (JudgeRun.objects.select_for_update(no_key=True).filter(pk=run_id)
               .values_list("concurrency", "status").first())
        if row is None:
            return (0, False) if with_others else 0
        cap = max(1, row[0])
        JudgeSession.objects.filter(run_id=run_id, beat_at__lt=live_since).delete()
        others = list(JudgeSession.objects.filter(run_id=run_id).exclude(lease=lease)
                      .values_list("held", "demand"))
        free = max(0, cap - sum(held for held, _ in others))
        grant = min(max(0, demand), free)
        if any(want > held for held, want in others):
            grant = min(grant, math.ceil(cap / (len(others) + 1)))
        if not JudgeSession.objects.filter(run_id=run_id, lease=lease).exists():
            # A new session starts with at most half the cap (and the whole a tick later when
            # it is alone): a second worker arriving at the same moment need not wait for a
            # whole wave of the first one's calls to drain.
            grant = min(grant, math.ceil(cap / 2))
        held = max(grant, in_flight)
        JudgeSession.objects.update_or_create(
            run_id=run_id, lease=lease,
            defaults={"held": held, "demand": max(0, demand), "beat_at": now},
        )
    return (grant, bool(others)) if with_others else grant


def slots_release(*, run_id: int, lease: str) -> None:
    JudgeSession.objects.filter(run_id=run_id, lease=lease).delete()


def rpm_limit(model: str) -> int | None:
    limits = settings.JUDGE_MODEL_RPM
    return limits.get(model, limits.get("*"))


def rate_take(*, model: str, want: int) -> tuple[int, float]:
    """Take up to `want` request tokens of this minute for `model`: (taken, seconds until the
    next minute). Without a limit for the model: (want, 0)."""
    limit = rpm_limit(model)
    if limit is None or want <= 0:
        return max(0, want), 0.0
    now = timezone.now()
    minute = now.replace(second=0, microsecond=0)
    until_next = 60.0 - (now - minute).total_seconds()
    with transaction.atomic():
        RateWindow.objects.get_or_create(model=model, minute=minute)
        window = RateWindow.objects.select_for_update().get(model=model, minute=minute)
        taken = max(0, min(want, limit - window.used))
        if taken:
            RateWindow.objects.filter(pk=window.pk).update(used=F("used") + taken)
    RateWindow.objects.filter(model=model,
                              minute__lt=minute - timezone.timedelta(minutes=10)).delete()
    return taken, until_next
