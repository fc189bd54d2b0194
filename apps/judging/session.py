"""A worker's session on a judge run: the asyncio side of executor.run_batch.

Four coroutines share one event loop:
- the dispatcher starts a queued call whenever the session has fewer calls in flight than its
  grant (its share of the run-wide concurrency, slots.py); one hung call holds one slot and
  nothing else;
- each call asks the model, retrying transient errors with backoff, and queues its result;
- the feeder takes the run's next free batch (work-stealing from the database) while the queue
  is shorter than one wave, so the pipeline never drains between batches;
- the watcher flushes results and counters to the database thread, renews the slot grant,
  beats the held batches' hearts, looks for a cancel, and finishes batches whose calls are all
  written.

Nothing here cancels a coroutine that waits on the database thread: cancelling an
asyncio.wrap_future cancels the job queued behind it, and the answers it carried would be lost
(paid for, then asked again). Every wait on the database is shielded, and the watcher and the
feeder end on a flag, not on cancel().
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque

from django.conf import settings

from apps.judging import provider, slots
from apps.judging.models import JudgmentStatus, RunStatus
from apps.judging.writer import Result, write_session
from apps.rubrics import prompting

TICK_S = 0.25


class Session:
    def __init__(self, run, lease: str, db, feed_db=None, *,
                 answered_before: bool = False) -> None:
        self.run = run
        # Whether the provider has answered this run before: an api_base that cannot be
        # reached then is a blip to retry; before any answer it is a wrong URL or a dead server.
        self.answered = answered_before
        self.refused = 0
        self.lease = lease
        self.db = db
        # The feeder plans batches on a connection of its own, so that taking the next batch
        # never waits behind a flush or a batch's verdicts (and the queue never runs dry).
        self.feed_db = feed_db or db
        self.contended = True
        self.queue: deque = deque()
        self.in_flight = 0
        self.grant = 0
        self.tokens: float = float("inf") if slots.rpm_limit(run.model) is None else 0
        self.results: list[Result] = []
        self.sent: Counter = Counter()
        self.paid: dict[int, float] = {}
        self.owner: dict[int, int] = {}  # judgment id -> batch number
        self.outstanding: Counter = Counter()  # batch number -> results not yet written
        self.held: list[int] = []
        self.wake = asyncio.Event()
        self.closing = asyncio.Event()
        self.stop = asyncio.Event()
        self.stop_reason = ""
        self.permanent_error: provider.ProviderError | None = None
        self.exhausted = False
        self.stealing = False
        self.started = time.monotonic()
        self.asked = 0
        self.call_settings = provider.CallSettings(
            model=run.model, api_base=run.api_base, temperature=run.temperature,
            max_tokens=run.max_tokens, timeout_s=run.timeout_s,
        )
        self.client = provider.ProviderClient()

    # -- bookkeeping (also used from the main thread after a soft time limit) -----------------
    def add_batch(self, number: int, calls: list, cached: list[Result]) -> None:
        self.held.append(number)
        self.outstanding[number] += len(calls) + len(cached)
        for call in calls:
            self.owner[call.judgment_id] = number
        for result in cached:
            self.owner[result.judgment_id] = number
        self.queue.extend(calls)
        self.results.extend(cached)
        self.wake.set()

    def halt(self, reason: str) -> None:
        if not self.stop.is_set():
            self.stop_reason = reason
            self.stop.set()
        self.wake.set()

    def take_pending_writes(self):
        results, self.results = self.results, []
        sent, self.sent = self.sent, Counter()
        paid, self.paid = self.paid, {}
        return results, sent, paid

    async def _db(self, fn, *args, _thread=None, **kwargs):
        # Shielded: see the module docstring.
        thread = _thread or self.db
        return await asyncio.shield(asyncio.wrap_future(thread.submit(fn, *args, **kwargs)))

    # -- the watcher ---------------------------------------------------------------------------
    async def flush(self) -> None:
        results, sent, paid = self.take_pending_writes()
        if results or sent or paid:
            await self._db(write_session, results, sent, paid)
        for result in results:
            number = self.owner.pop(result.judgment_id, None)
            if number is not None:
                self.outstanding[number] -= 1
        from apps.judging.executor import finish_batch

        for number in [n for n in self.held if self.outstanding[n] <= 0]:
            self.held.remove(number)
            await self._db(finish_batch, self.run, number, self.lease, stopped=False)

    def demand(self) -> int:
        more = 0 if self.exhausted or self.stop.is_set() else self.run.concurrency
        return min(self.run.concurrency, self.in_flight + len(self.queue) + more)

    async def claim(self) -> None:
        grant, self.contended = await self._db(
            slots.slots_claim, run_id=self.run.pk, lease=self.lease, in_flight=self.in_flight,
            demand=self.demand(), with_others=True)
        if self.tokens != float("inf") and self.tokens < grant:
            taken, _ = await self._db(slots.rate_take, model=self.run.model,
                                      want=grant - int(self.tokens))
            self.tokens += taken
            self.wake.set()
        if grant != self.grant:
            self.grant = grant
            self.wake.set()

    async def watch(self) -> None:
        from apps.judging.executor import beat_batches

        last_beat = 0.0
        while not self.closing.is_set():
            try:
                await asyncio.wait_for(self.closing.wait(), timeout=TICK_S)
            except TimeoutError:
                pass
            await self.flush()
            if self.closing.is_set():
                break
            beat_due = time.monotonic() - last_beat >= min(settings.JUDGE_HEARTBEAT_S, 1.0)
            # Alone on the run with all it wants, a session renews its slots with its heartbeat;
            # shared, every tick, so that a newcomer gets its share within a tick.
            if beat_due or self.contended or self.grant < self.demand():
                await self.claim()
            if beat_due:
                last_beat = time.monotonic()
                status, lost = await self._db(beat_batches, self.run.pk, list(self.held),
                                              self.lease)
                if status not in (RunStatus.RUNNING, RunStatus.COMPLETED):
                    self.halt(status or "gone")  # cancelled or failed: start nothing more
                elif lost:
                    self.halt("lease lost")

    # -- the feeder ----------------------------------------------------------------------------
    async def feed(self) -> None:
        from apps.judging.executor import steal_batch

        while not self.closing.is_set() and not self.stop.is_set():
            over_time = time.monotonic() - self.started > settings.JUDGE_SESSION_MAX_S
            if len(self.queue) < 2 * max(self.grant, 1) and not over_time:
                self.stealing = True
                try:
                    taken = await self._db(steal_batch, self.run, self.lease,
                                           _thread=self.feed_db)
                finally:
                    self.stealing = False
                if taken is not None:
                    self.exhausted = False
                    self.add_batch(*taken)
                    continue
            if not self.queue:
                self.exhausted = True
                self.wake.set()
            try:  # another session may let a batch go (stopped, or its worker died)
                await asyncio.wait_for(self.closing.wait(), timeout=2 * TICK_S)
            except TimeoutError:
                pass

    # -- the dispatcher and the calls ----------------------------------------------------------
    async def call(self, item) -> None:
        from apps.judging.executor import REFUSALS_BEFORE_STOP

        schema = prompting.response_schema(item.criterion) if self.run.use_schema else None
        attempt = 0
        try:
            while not self.stop.is_set():
                while self.tokens < 1:  # the model's requests-per-minute limit (slots.py)
                    self.wake.clear()
                    await self.wake.wait()
                    if self.stop.is_set():
                        return
                self.tokens -= 1
                attempt += 1
                self.sent[item.judgment_id] += 1
                self.asked += 1
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
                if completion.cost_usd is not None:
                    self.paid[item.judgment_id] = (self.paid.get(item.judgment_id, 0.0)
                                                   + completion.cost_usd)
                from apps.judging.executor import _result_from_text

                self.results.append(_result_from_text(
                    item, completion.content, attempts=attempt, cached=False,
                    prompt_tokens=completion.prompt_tokens,
                    completion_tokens=completion.completion_tokens, cost_usd=completion.cost_usd,
                    latency_ms=completion.latency_ms, model=self.run.model,
                ))
                return
        finally:
            self.in_flight -= 1
            self.wake.set()

    def _stop_run(self, error: provider.ProviderError) -> None:
        if self.permanent_error is None:
            self.permanent_error = error
        self.halt("run-level error")

    async def dispatch(self) -> None:
        tasks: set[asyncio.Task] = set()
        while not self.stop.is_set():
            if self.queue and self.in_flight < self.grant:
                self.in_flight += 1
                task = asyncio.create_task(self.call(self.queue.popleft()))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                continue
            if not self.queue and not self.in_flight and self.exhausted and not self.stealing:
                break
            self.wake.clear()
            await self.wake.wait()
        if tasks:
            await asyncio.gather(*tasks)

    async def execute(self) -> None:
        await self.claim()
        watcher = asyncio.create_task(self.watch())
        feeder = asyncio.create_task(self.feed())
        try:
            await self.dispatch()
        finally:
            self.closing.set()
            self.wake.set()
            await asyncio.gather(feeder, watcher, return_exceptions=True)
            await self.flush()
            await self._db(slots.slots_release, run_id=self.run.pk, lease=self.lease)
            # No client.aclose() here: the loop lives on for the next batch, and with it
            # litellm's background work (waiting for it cost over a second per batch).
