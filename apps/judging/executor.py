"""Batches of a judge run, inside a Celery task: calls run concurrently with asyncio and
litellm, within the worker's share of the run's concurrency (slots.py); each result is written
once (writer.py).

Life of a batch:
1. Take the batch's lease (a second delivery of the same batch, while the lease is fresh, takes
   another free batch of the run instead, or leaves; a stale lease is taken over: its worker died).
2. Render every pending call; answers already in the call cache are written straight away.
3. Call the model for the rest (session.py), retrying transient errors with backoff; while its
   calls are in flight the session takes the run's next free batch, so the pipeline never
   drains between batches and every listening worker shares the run. Whatever comes back is
   that call's outcome: an answer (a verdict, or invalid with the reason and the raw text made
   storable), a refusal of the prompt (content filter, context window: that call fails), or an
   error about the run (key, model, api_base, quota; an api_base that cannot be reached before
   anything answered): then no new call starts, and the run fails naming the URL and cause.
4. Write the combined verdicts of each batch as it ends, release the lease, pull the next batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.judging import provider
from apps.judging.aggregate import build_verdicts
from apps.judging.models import (
    BatchStatus,
    JudgeBatch,
    JudgeRun,
    Judgment,
    JudgmentStatus,
    RunStatus,
)
from apps.judging.outcome import finalize_if_done
from apps.judging.slots import slots_release
from apps.judging.verdicts import ParseError, parse_verdict, storable
from apps.judging.writer import DbThread, Result, write_session
from apps.rubrics import prompting
from apps.rubrics.selectors import judge_spec

log = logging.getLogger(__name__)


@dataclass
class Call:
    judgment_id: int
    criterion: dict
    swapped: bool
    messages: list[dict]
    cache_key: str
    sample: int


def cache_key(messages: list[dict], run: JudgeRun, sample: int, schema: bool) -> str:
    material = json.dumps(
        [messages, run.model, run.api_base, run.temperature, run.max_tokens, schema, sample],
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _take_lease(run: JudgeRun, number: int, lease: str) -> bool:
    stale = timezone.now() - timezone.timedelta(seconds=settings.JUDGE_BATCH_STALE_S)
    now = timezone.now()
    taken = JudgeBatch.objects.filter(run=run, number=number).filter(
        ~Q(status=BatchStatus.RUNNING) | Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True)
        | Q(lease=lease)
    ).exclude(status=BatchStatus.DONE).update(
        status=BatchStatus.RUNNING, lease=lease, heartbeat_at=now
    )
    return bool(taken)


def _plan_calls(run: JudgeRun, number: int) -> tuple[list[Call], list[Result]]:
    spec = judge_spec(run.rubric_version)
    criteria = {c["key"]: c for c in spec["criteria"]}
    pending = (
        Judgment.objects.filter(run=run, batch=number, status=JudgmentStatus.PENDING)
        .select_related("item")
        .only("id", "criterion_key", "sample", "order", "item__prompt", "item__response",
              "item__response_a", "item__response_b", "item__reference")
        .order_by("id")
    )
    calls: list[Call] = []
    for judgment in pending:
        criterion = criteria.get(judgment.criterion_key)
        if criterion is None:  # cannot happen for a published version; be explicit anyway
            continue
        swapped = judgment.order == "BA"
        messages = prompting.build_messages(spec, criterion, judgment.item.fields(),
                                            swapped=swapped)
        calls.append(Call(judgment.pk, criterion, swapped, messages,
                          cache_key(messages, run, judgment.sample, run.use_schema),
                          judgment.sample))
    if not run.use_cache or not calls:
        return calls, []
    from apps.judging.models import CallCache

    hits: dict[str, CallCache] = {}
    keys = [c.cache_key for c in calls]
    for start in range(0, len(keys), 500):
        for entry in CallCache.objects.filter(key__in=keys[start : start + 500]):
            hits[entry.key] = entry
    cached_results = []
    remaining = []
    for call in calls:
        entry = hits.get(call.cache_key)
        if entry is None:
            remaining.append(call)
            continue
        cached_results.append(_result_from_text(call, entry.content, attempts=0, cached=True,
                                                prompt_tokens=entry.prompt_tokens,
                                                completion_tokens=entry.completion_tokens,
                                                cost_usd=0.0, latency_ms=0, model=run.model))
    return remaining, cached_results


# How much of an answer is kept to be read on the run page (the verdict needs no more).
RAW_OUTPUT_LIMIT = 20000
# A run whose first calls are all refused (a parameter every call sends is wrong) stops after
# this many refusals without a single answer, instead of asking every remaining prompt.
REFUSALS_BEFORE_STOP = 20


def _result_from_text(call: Call, text: str, **fields) -> Result:
    """An answer as this call's outcome: never an exception, whatever the text holds."""
    raw = ""
    try:
        # What a model says is stored and shown; a provider that echoes a key must not put it
        # there. NUL and lone surrogates become U+FFFD: PostgreSQL text cannot hold them.
        text = provider.redact(text if isinstance(text, str) else str(text))
        raw = storable(text[:RAW_OUTPUT_LIMIT])
        value, rationale = parse_verdict(text, call.criterion, swapped=call.swapped)
    except ParseError as exc:
        return Result(judgment_id=call.judgment_id, status=JudgmentStatus.INVALID,
                      raw_output=raw, error_kind=f"invalid_{exc.kind}",
                      error_message=str(exc), cache_key="", **fields)
    except Exception as exc:  # reading must not end the batch: the answer is the outcome
        log.exception("call %s: the answer could not be read", call.judgment_id)
        return Result(judgment_id=call.judgment_id, status=JudgmentStatus.INVALID,
                      raw_output=raw, error_kind="invalid_unreadable",
                      error_message=f"the answer could not be read ({type(exc).__name__})",
                      cache_key="", **fields)
    # The cache keeps the whole answer or nothing: a cut answer no longer parses.
    whole = text if len(text) <= settings.JUDGE_CACHE_MAX_CHARS else ""
    return Result(judgment_id=call.judgment_id, status=JudgmentStatus.DONE,
                  value=storable(str(value))[:64], rationale=rationale, raw_output=raw,
                  cache_key=call.cache_key, cache_content=whole, **fields)


_LOOP: asyncio.AbstractEventLoop | None = None


def _run_in_process_loop(coro) -> None:
    """Run on one event loop per worker process, kept between batches.

    A new loop per batch (asyncio.run) would make litellm build and cache a new HTTP client
    for every batch: memory that grows with the length of the run, and no kept-alive
    connections. A loop interrupted by an exception (the soft time limit) is thrown away.
    """
    global _LOOP
    if _LOOP is None or _LOOP.is_closed():
        _LOOP = asyncio.new_event_loop()
    try:
        _LOOP.run_until_complete(coro)
    except BaseException:
        loop, _LOOP = _LOOP, None
        _shut(loop)
        raise


def _shut(loop: asyncio.AbstractEventLoop) -> None:
    """Close a kept loop cleanly: litellm's work on it ends first, what is left is cancelled
    and awaited (else "Task was destroyed but it is pending" or "Event loop is closed" from
    the garbage collector, later and anywhere)."""
    try:
        loop.run_until_complete(provider.ProviderClient().aclose())
    except Exception:  # best effort: a batch's own error is the one that matters
        pass
    # litellm's logging worker may have moved to another loop and left its task here.
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    try:
        if pending:  # gather() of nothing would make its future on another loop
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


def close_process_loop() -> None:
    """At the end of a worker process (and of the test session): close the kept loop."""
    global _LOOP
    loop, _LOOP = _LOOP, None
    if loop is not None and not loop.is_closed():
        _shut(loop)


def beat_batches(run_id: int, numbers: list[int], lease: str) -> tuple[str, bool]:
    """Renew the held batches' leases: (the run's status, whether a lease was lost)."""
    beaten = JudgeBatch.objects.filter(run_id=run_id, number__in=numbers, lease=lease).update(
        heartbeat_at=timezone.now()
    )
    status = JudgeRun.objects.filter(pk=run_id).values_list("status", flat=True).first() or ""
    return status, beaten < len(numbers)


def _take_any(run: JudgeRun, lease: str) -> int | None:
    """Take the run's first batch that nobody works on (work-stealing from the database)."""
    if not JudgeRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).exists():
        return None
    # Not a running batch whose worker went silent: the coordinator sends that one again,
    # counting it against its delivery budget (apps/judging/delivery.py).
    free = (JudgeBatch.objects.filter(run=run)
            .filter(status__in=(BatchStatus.PENDING, BatchStatus.DISPATCHED))
            .order_by("number").values_list("number", flat=True))
    for number in free[:8]:
        if _take_lease(run, number, lease):
            return number
    return None


def steal_batch(run: JudgeRun, lease: str):
    """On the database thread: take a free batch and plan its calls, or None."""
    number = _take_any(run, lease)
    if number is None:
        return None
    calls, cached = _plan_calls(run, number)
    return number, calls, cached


def _fail_run(run: JudgeRun, error: provider.ProviderError) -> None:
    """An error about the run stops it; its message (naming the URL) is stored once, and the
    pending calls stay pending, for a resume once the cause is fixed."""
    JudgeRun.objects.filter(pk=run.pk, status__in=(RunStatus.QUEUED, RunStatus.RUNNING)).update(
        status=RunStatus.FAILED, finished_at=timezone.now(),
        error_message=f"{error.kind}: {error.message}"[:4000],
    )


def run_batch(run_id: int, number: int, *, lease: str | None = None) -> str:
    """Work on one batch, and on the run's next free batches while there is time; returns
    what happened (for logs and tests)."""
    from apps.judging.session import Session

    lease = lease or uuid.uuid4().hex
    run = JudgeRun.objects.select_related("rubric_version__rubric", "dataset").filter(
        pk=run_id).first()
    if run is None or not run.is_active:
        return "inactive"
    JudgeRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now()
    )
    run.status = RunStatus.RUNNING
    # A second delivery of a batch someone works on (or took already) joins the run instead.
    if not _take_lease(run, number, lease):
        number = _take_any(run, lease)
        if number is None:
            return "busy"
    began = time.perf_counter()
    calls, cached = _plan_calls(run, number)
    db, feed_db = DbThread(), DbThread()
    # Whether the provider has answered this run before: an api_base that cannot be reached
    # then is a blip to retry; before any answer it is a wrong URL or a dead server.
    answered_before = bool(cached) or Judgment.objects.filter(
        run=run, status__in=(JudgmentStatus.DONE, JudgmentStatus.INVALID), cached=False,
    ).exists()
    session = Session(run, lease, db, feed_db, answered_before=answered_before)
    session.add_batch(number, calls, cached)
    try:
        _run_in_process_loop(session.execute())
    except SoftTimeLimitExceeded:
        # Out of time: what was answered is written; the rest goes out again as a new task.
        session.halt("time limit")
        db.submit(write_session, *session.take_pending_writes()).result()
    finally:
        db.close()
        feed_db.close()
        slots_release(run_id=run.pk, lease=lease)
    if session.permanent_error is not None:
        _fail_run(run, session.permanent_error)
    for left in list(session.held):
        finish_batch(run, left, lease, stopped=session.stop.is_set())
    outcome = "stopped" if session.stop.is_set() else "done"
    log.info("run %s: session from batch %s, %s requests in %.2fs: %s (%s)", run.pk, number,
             session.asked, time.perf_counter() - began, outcome,
             session.stop_reason or "finished")
    return outcome


def finish_batch(run: JudgeRun, number: int, lease: str, *, stopped: bool) -> str:
    from apps.judging.planning import dispatch_window

    build_verdicts(run, batch=number)
    left = Judgment.objects.filter(run=run, batch=number, status=JudgmentStatus.PENDING).exists()
    JudgeBatch.objects.filter(run=run, number=number, lease=lease).update(
        status=BatchStatus.PENDING if left else BatchStatus.DONE, lease="", heartbeat_at=None
    )
    run.refresh_from_db(fields=["status"])
    if run.status == RunStatus.RUNNING:
        if not left or not stopped:
            dispatch_window(run, resend=[number] if left else None)
        finalize_if_done(run)
    return "stopped" if stopped else "done"
