"""Judge runs on real Celery worker processes, the real broker, the real database, the real
litellm client and the fake provider (DESIGN.md invariants; issue: execution that survives
reality). Each test kills, floods or starves the run and checks that it still ends with exactly
one judgment per key and the verdicts the fake provider was told to give."""

from __future__ import annotations

import time

import pytest
from django.db.models import Count

from apps.judging.models import Judgment, JudgmentStatus, RunStatus, Verdict
from apps.judging.planning import judge_run_cancel
from apps.judging.tasks import run_judge_batch
from tests.judging.helpers import (
    done_count,
    expected_level,
    make_pointwise,
    run_status,
    start,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _assert_exactly_once_and_right(run, items: int) -> None:
    keys = (Judgment.objects.filter(run=run)
            .values("item_id", "criterion_key", "sample", "order").annotate(n=Count("id")))
    assert keys.count() == run.planned_calls == items * 2
    assert all(row["n"] == 1 for row in keys)
    statuses = dict(Judgment.objects.filter(run=run).values_list("status")
                    .annotate(n=Count("id")).values_list("status", "n"))
    errors = list(Judgment.objects.filter(run=run).exclude(error_kind="")
                  .values_list("error_kind", "error_message")[:3])
    assert statuses == {JudgmentStatus.DONE: items * 2}, (statuses, errors)
    verdicts = Verdict.objects.filter(run=run, criterion_key="correct").select_related("item")
    assert verdicts.count() == items
    for verdict in verdicts:
        n = int(verdict.item.external_id[1:])
        assert verdict.value == str(expected_level(n))


def test_kill_9_mid_run_then_a_new_worker_completes_it_exactly_once(
        personas, fake, start_worker):
    version, dataset = make_pointwise(personas.project, items=60)
    fake.control(latency_ms=300)
    worker = start_worker()
    run = start(personas.project, version, dataset, fake, concurrency=8)
    wait_for(lambda: done_count(run) >= 30, timeout=60, what="30 results", worker=worker)
    worker.kill9()
    assert run_status(run) == RunStatus.RUNNING
    assert done_count(run) < run.planned_calls
    second = start_worker()
    wait_for(lambda: run_status(run) == RunStatus.COMPLETED, timeout=90,
             what="the run to complete on the new worker", worker=second)
    _assert_exactly_once_and_right(run, 60)


def test_the_same_batch_delivered_twice_writes_no_duplicates(personas, fake, start_worker):
    version, dataset = make_pointwise(personas.project, items=20)
    fake.control(latency_ms=200)
    worker = start_worker(concurrency=2)
    run = start(personas.project, version, dataset, fake, concurrency=5)
    # The same message again, twice, while the first delivery is at work.
    for _ in range(2):
        run_judge_batch.delay(run.pk, 0)
    wait_for(lambda: run_status(run) == RunStatus.COMPLETED, timeout=60, what="completion",
             worker=worker)
    _assert_exactly_once_and_right(run, 20)


def test_a_429_storm_slows_the_run_down_and_it_completes(personas, fake, start_worker):
    version, dataset = make_pointwise(personas.project, items=15)
    worker = start_worker()
    fake.control(rate_429=1.0, retry_after_s=1, storm_s=2.5)
    started = time.monotonic()
    run = start(personas.project, version, dataset, fake, concurrency=10)
    wait_for(lambda: run_status(run) == RunStatus.COMPLETED, timeout=90, what="completion",
             worker=worker)
    assert time.monotonic() - started >= 2.0
    stats = fake.stats()
    assert stats["by_status"].get("429", 0) >= 10, stats
    _assert_exactly_once_and_right(run, 15)
    retried = Judgment.objects.filter(run=run, attempts__gt=1).count()
    assert retried >= 10


def test_a_hung_call_times_out_is_retried_and_the_run_completes(personas, fake, start_worker):
    version, dataset = make_pointwise(personas.project, items=10)
    worker = start_worker()
    fake.control(fail_first_n=0, rate_hang=0.25, seed=3)
    run = start(personas.project, version, dataset, fake, concurrency=10, timeout_s=1.0)
    wait_for(lambda: run_status(run) == RunStatus.COMPLETED, timeout=90, what="completion",
             worker=worker)
    assert fake.stats()["faults"].get("hang", 0) >= 1
    _assert_exactly_once_and_right(run, 10)
    timed_out = Judgment.objects.filter(run=run, attempts__gt=1)
    assert timed_out.exists()


def test_malformed_output_becomes_error_rows_not_scores(personas, fake, start_worker):
    version, dataset = make_pointwise(personas.project, items=20)
    worker = start_worker()
    fake.control(rate_malformed=0.1, rate_fenced=0.2, rate_trailing_comma=0.2, seed=11)
    run = start(personas.project, version, dataset, fake, concurrency=10)
    # Some answers were invalid, few enough for the run to count: completed with failures.
    wait_for(lambda: run_status(run) == RunStatus.COMPLETED_WITH_FAILURES, timeout=60,
             what="completion with failures", worker=worker)
    invalid = Judgment.objects.filter(run=run, status=JudgmentStatus.INVALID)
    assert invalid.exists()
    for judgment in invalid:
        assert judgment.value == ""
        assert judgment.raw_output  # what the model said is kept for the user to read
        assert judgment.error_kind == "invalid_json"
    # Fenced and trailing-comma answers were read; malformed ones never became a score.
    assert fake.stats()["faults"].get("fenced", 0) >= 1
    done = Judgment.objects.filter(run=run, status=JudgmentStatus.DONE, criterion_key="correct")
    for judgment in done.select_related("item"):
        assert judgment.value == str(expected_level(int(judgment.item.external_id[1:])))
    assert done.count() + invalid.filter(criterion_key="correct").count() == 20


def test_cancel_stops_new_calls_from_reaching_the_provider(personas, fake, start_worker):
    version, dataset = make_pointwise(personas.project, items=100)
    fake.control(latency_ms=400)
    worker = start_worker()
    run = start(personas.project, version, dataset, fake, concurrency=4)
    wait_for(lambda: done_count(run) >= 8, timeout=60, what="some results", worker=worker)
    judge_run_cancel(run=run)
    time.sleep(2.0)  # in-flight calls finish; the worker sees the cancel within a second
    after_cancel = fake.stats()["requests"]
    time.sleep(2.0)
    assert fake.stats()["requests"] == after_cancel
    assert run_status(run) == RunStatus.CANCELLED
    assert done_count(run) < run.planned_calls


def test_a_permanent_error_stops_the_run_with_the_message_once(personas, fake, start_worker):
    version, dataset = make_pointwise(personas.project, items=40)
    fake.control(api_key="sk-the-right-key")
    worker = start_worker()
    run = start(personas.project, version, dataset, fake, concurrency=5)
    wait_for(lambda: run_status(run) == RunStatus.FAILED, timeout=60, what="the run to fail",
             worker=worker)
    run.refresh_from_db()
    assert "auth" in run.error_message
    assert "Incorrect API key" in run.error_message
    # Not 80 failed rows with 80 copies of the message: the work stays pending for a resume.
    assert Judgment.objects.filter(run=run, status=JudgmentStatus.FAILED).count() == 0
    assert Judgment.objects.filter(run=run, status=JudgmentStatus.PENDING).count() > 0
    assert fake.stats()["by_status"].get("401", 0) <= 10
