"""One batch of a judge run, inside a Celery task: calls run concurrently with asyncio and
litellm, bounded by the run's concurrency; each result is written once (writer.py).

Life of a batch:
1. Take the batch's lease (a second delivery of the same batch, while the lease is fresh, leaves
   at once; a stale lease is taken over: its worker died).
2. Render every pending call; answers already in the call cache are written straight away.
3. Call the model for the rest, retrying transient errors with backoff. Whatever comes back is
   that call's outcome: an answer (a verdict, or invalid with the reason and the raw text made
   storable), a refusal of the prompt (content filter, context window: that call fails), or an
   error about the run (key, model, api_base, quota; an api_base that cannot be reached before
   anything answered): then no new call starts, and the run fails naming the URL and cause.
4. Write the combined verdicts of the batch, release the lease, pull the next batch.
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
from apps.judging.verdicts import ParseError, parse_verdict, storable
from apps.judging.writer import DbThread, Result, write_results
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
    return Result(judgment_id=call.judgment_id, status=JudgmentStatus.DONE,
                  value=storable(str(value))[:64], rationale=rationale, raw_output=raw,
                  cache_key=call.cache_key, **fields)


class _Batch:
    """The asyncio side: calls in flight, results queued for the database thread."""

    def __init__(self, run: JudgeRun, number: int, lease: str, db: DbThread, *,
                 answered_before: bool = False) -> None:
        self.run = run
        # Whether the provider has answered this run before: an api_base that cannot be
        # reached then is a blip to retry; before any answer it is a wrong URL or a dead server.
        self.answered = answered_before
        self.refused = 0
        self.number = number
        self.lease = lease
        self.db = db
        self.results: list[Result] = []
        self.stop = asyncio.Event()
        self.stop_reason = ""
        self.permanent_error: provider.ProviderError | None = None
        self.call_settings = provider.CallSettings(
            model=run.model, api_base=run.api_base, temperature=run.temperature,
            max_tokens=run.max_tokens, timeout_s=run.timeout_s,
        )
        self.client = provider.ProviderClient()

    async def _db(self, fn, *args):
        return await asyncio.wrap_future(self.db.submit(fn, *args))

    async def flush(self) -> None:
        if self.results:
            pending, self.results = self.results, []
            await self._db(write_results, pending)

    async def watch(self) -> None:
        """Flush results, beat the lease's heart and look for a cancel, until told to stop."""
        last_beat = 0.0
        while True:
            await asyncio.sleep(0.25)
            await self.flush()
            if time.monotonic() - last_beat >= min(settings.JUDGE_HEARTBEAT_S, 1.0):
                last_beat = time.monotonic()
                status = await self._db(_beat, self.run.pk, self.number, self.lease)
                if status != RunStatus.RUNNING and not self.stop.is_set():
                    self.stop_reason = status or "lease lost"
                    self.stop.set()

    async def call(self, item: Call, semaphore: asyncio.Semaphore) -> None:
        schema = prompting.response_schema(item.criterion) if self.run.use_schema else None
        async with semaphore:
            attempt = 0
            while not self.stop.is_set():
                attempt += 1
                try:
                    completion = await self.client.complete(item.messages, self.call_settings,
                                                            response_format=schema)
                except provider.ProviderError as exc:
                    if exc.kind == "unreachable" and not self.answered:
                        exc = provider.ProviderError(exc.kind, exc.message, scope=provider.RUN)
                    if exc.permanent:
                        self._stop_run(exc)
                        return
                    if exc.call_only:
                        self.results.append(Result(
                            judgment_id=item.judgment_id, status=JudgmentStatus.FAILED,
                            error_kind=exc.kind, error_message=exc.message, attempts=attempt,
                        ))
                        self.refused += 1
                        if not self.answered and self.refused >= REFUSALS_BEFORE_STOP:
                            self._stop_run(provider.ProviderError(
                                exc.kind, f"the first {self.refused} calls were all refused, "
                                f"none answered; the last: {exc.message}", scope=provider.RUN))
                        return
                    if attempt >= settings.JUDGE_MAX_ATTEMPTS:
                        self.results.append(Result(
                            judgment_id=item.judgment_id, status=JudgmentStatus.FAILED,
                            error_kind=exc.kind, error_message=exc.message, attempts=attempt,
                        ))
                        return
                    delay = provider.backoff_delay(attempt, exc.retry_after,
                                                   base=settings.JUDGE_BACKOFF_BASE_S,
                                                   cap=settings.JUDGE_BACKOFF_CAP_S)
                    try:
                        await asyncio.wait_for(self.stop.wait(), timeout=delay)
                    except TimeoutError:
                        pass
                    continue
                self.answered = True
                self.results.append(_result_from_text(
                    item, completion.content, attempts=attempt, cached=False,
                    prompt_tokens=completion.prompt_tokens,
                    completion_tokens=completion.completion_tokens, cost_usd=completion.cost_usd,
                    latency_ms=completion.latency_ms, model=self.run.model,
                ))
                return

    def _stop_run(self, error: provider.ProviderError) -> None:
        if self.permanent_error is None:
            self.permanent_error = error
            self.stop_reason = "run-level error"
            self.stop.set()

    async def execute(self, calls: list[Call]) -> None:
        semaphore = asyncio.Semaphore(max(1, self.run.concurrency))
        watcher = asyncio.create_task(self.watch())
        try:
            await asyncio.gather(*(self.call(c, semaphore) for c in calls))
        finally:
            watcher.cancel()
            try:
                await watcher
            except asyncio.CancelledError:
                pass
            await self.flush()
            # No client.aclose() here: the loop lives on for the next batch, and with it
            # litellm's background work (waiting for it cost over a second per batch).


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


def _beat(run_id: int, number: int, lease: str) -> str:
    JudgeBatch.objects.filter(run_id=run_id, number=number, lease=lease).update(
        heartbeat_at=timezone.now()
    )
    return JudgeRun.objects.filter(pk=run_id).values_list("status", flat=True).first() or ""


def _fail_run(run: JudgeRun, error: provider.ProviderError) -> None:
    """An error about the run stops it; its message (naming the URL) is stored once, and the
    pending calls stay pending, for a resume once the cause is fixed."""
    JudgeRun.objects.filter(pk=run.pk, status__in=(RunStatus.QUEUED, RunStatus.RUNNING)).update(
        status=RunStatus.FAILED, finished_at=timezone.now(),
        error_message=f"{error.kind}: {error.message}"[:4000],
    )


def run_batch(run_id: int, number: int, *, lease: str | None = None) -> str:
    """Work on one batch; returns what happened (for logs and tests)."""
    lease = lease or uuid.uuid4().hex
    run = JudgeRun.objects.select_related("rubric_version__rubric", "dataset").filter(
        pk=run_id).first()
    if run is None or not run.is_active:
        return "inactive"
    if not _take_lease(run, number, lease):
        return "busy"
    JudgeRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now()
    )
    run.status = RunStatus.RUNNING
    began = time.perf_counter()
    calls, cached = _plan_calls(run, number)
    write_results(cached)
    planned = time.perf_counter()
    db = DbThread()
    answered_before = bool(cached) or Judgment.objects.filter(
        run=run, status__in=(JudgmentStatus.DONE, JudgmentStatus.INVALID), cached=False,
    ).exists()
    batch = _Batch(run, number, lease, db, answered_before=answered_before)
    try:
        if calls:
            _run_in_process_loop(batch.execute(calls))
    except SoftTimeLimitExceeded:
        # Out of time: what was answered is written; the rest goes out again as a new task.
        batch.stop.set()
        write_results(batch.results)
    finally:
        db.close()
    if batch.permanent_error is not None:
        _fail_run(run, batch.permanent_error)
    called = time.perf_counter()
    outcome = finish_batch(run, number, lease, stopped=batch.stop.is_set())
    log.info("run %s batch %s: %s calls (%s cached) planned in %.2fs, called in %.2fs, "
             "finished in %.2fs: %s", run.pk, number, len(calls), len(cached), planned - began,
             called - planned, time.perf_counter() - called, outcome)
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
