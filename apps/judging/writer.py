"""Database side of a batch: results written once, from one thread, in small transactions.

The event loop never touches the ORM (Django forbids it, and a model call must never sit inside
a transaction). Results are queued here and flushed from a single worker thread, which owns one
database connection for the life of the batch.

A write never fails for the whole batch because of one row: texts are made storable first
(verdicts.storable), and when a group of rows is still refused (a value the column cannot hold,
a database that rejects a character we did not foresee), each row is written on its own; a row
that is still refused is written as that call's outcome, `invalid_unstorable`, without the text.
Only a lost connection fails the write, and then the task is retried (tasks.py).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from django.utils import timezone

from apps.judging.models import CallCache, Judgment, JudgmentStatus
from apps.judging.verdicts import storable

log = logging.getLogger(__name__)


@dataclass
class Result:
    judgment_id: int
    status: str
    value: str = ""
    rationale: str = ""
    raw_output: str = ""
    error_kind: str = ""
    error_message: str = ""
    attempts: int = 0
    cached: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    latency_ms: int | None = None
    cache_key: str = ""
    model: str = ""
    # The whole answer, for the call cache (empty: not cached; raw_output may be cut for display).
    cache_content: str = ""


_UPDATE_SQL = None


def _update_sql() -> str:
    global _UPDATE_SQL
    if _UPDATE_SQL is None:
        table = connection.ops.quote_name(Judgment._meta.db_table)
        # The status condition makes the write happen once: a second delivery of the batch,
        # or a second worker, finds the row no longer pending and changes nothing.
        _UPDATE_SQL = (
            f"UPDATE {table} SET status = %s, value = %s, rationale = %s, raw_output = %s, "
            "error_kind = %s, error_message = %s, attempts = %s, cached = %s, "
            "prompt_tokens = %s, completion_tokens = %s, cost_usd = %s, latency_ms = %s, "
            "finished_at = %s WHERE id = %s AND status = %s"
        )
    return _UPDATE_SQL


def write_results(results: list[Result]) -> None:
    """Write results once each; one row the database refuses never stops the others."""
    if not results:
        return
    try:
        _write(results)
        return
    except (OperationalError, InterfaceError):
        raise  # the connection, not a row: the task retries
    except DatabaseError as exc:
        log.warning("a write of %s results was refused (%s); writing them one by one",
                    len(results), exc)
    for result in results:
        try:
            _write([result])
        except (OperationalError, InterfaceError):
            raise
        except DatabaseError as exc:
            log.warning("judgment %s could not be stored (%s)", result.judgment_id, exc)
            _write([_unstorable(result, exc)])


def _unstorable(result: Result, exc: Exception) -> Result:
    return Result(
        judgment_id=result.judgment_id, status=JudgmentStatus.INVALID,
        error_kind="invalid_unstorable",
        error_message=storable(f"the answer could not be stored: {type(exc).__name__}"),
        attempts=result.attempts, prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens, cost_usd=result.cost_usd,
        latency_ms=result.latency_ms,
    )


def _write(results: list[Result]) -> None:
    now = timezone.now()
    rows = [
        (r.status, storable(r.value), storable(r.rationale), storable(r.raw_output),
         r.error_kind[:32], storable(r.error_message[:4000]), r.attempts, r.cached,
         r.prompt_tokens, r.completion_tokens, r.cost_usd, r.latency_ms, now, r.judgment_id,
         JudgmentStatus.PENDING)
        for r in results
    ]
    cache_rows = [
        CallCache(key=r.cache_key, model=r.model, content=storable(r.cache_content),
                  prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens,
                  cost_usd=r.cost_usd)
        for r in results
        if r.cache_key and r.cache_content and r.status == JudgmentStatus.DONE and not r.cached
    ]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.executemany(_update_sql(), rows)
        if cache_rows:
            CallCache.objects.bulk_create(cache_rows, ignore_conflicts=True)


def write_counters(sent: dict[int, int], paid: dict[int, float]) -> None:
    """Add requests sent and what answers cost to their rows, whatever the rows' status: a
    request is paid even when its answer is a duplicate or comes after a cancel. One statement
    per flush on PostgreSQL (a VALUES list), row by row elsewhere."""
    table = connection.ops.quote_name(Judgment._meta.db_table)
    rows = [(jid, n, paid.get(jid)) for jid, n in sent.items()]
    rows += [(jid, 0, cost) for jid, cost in paid.items() if jid not in sent]
    if not rows:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            values = ", ".join(["(%s::bigint, %s::integer, %s::double precision)"] * len(rows))
            cursor.execute(
                f"UPDATE {table} AS j SET requests = j.requests + v.n, paid_cost_usd = CASE "
                "WHEN v.cost IS NULL THEN j.paid_cost_usd "
                "ELSE COALESCE(j.paid_cost_usd, 0) + v.cost END "
                f"FROM (VALUES {values}) AS v(id, n, cost) WHERE j.id = v.id",
                [x for row in rows for x in row])
            return
        cursor.executemany(
            f"UPDATE {table} SET requests = requests + %s, paid_cost_usd = CASE WHEN %s IS NULL "
            "THEN paid_cost_usd ELSE COALESCE(paid_cost_usd, 0) + %s END WHERE id = %s",
            [(n, cost, cost, jid) for jid, n, cost in rows])


def write_session(results: list[Result], sent: dict[int, int], paid: dict[int, float]) -> None:
    """One flush of a session: counters, then results (once; row by row if a group is refused)."""
    write_counters(sent, paid)
    write_results(results)


class DbThread:
    """A single thread that runs every database operation of one batch, in order."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge-db")
        self._lock = threading.Lock()

    def submit(self, fn, *args, **kwargs):
        return self._pool.submit(fn, *args, **kwargs)

    def close(self) -> None:
        # Django keeps one connection per thread; close ours before the thread goes away.
        self._pool.submit(_close_connection).result()
        self._pool.shutdown(wait=True)


def _close_connection() -> None:
    close_old_connections()
    connection.close()
