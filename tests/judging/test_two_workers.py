"""Two worker processes share one run (issue 11, section 5): real Celery workers on the real
broker and database, the real litellm client, the fake provider counting what is in flight.
The run's concurrency is one cap across both; both do work; nothing is asked twice or left."""

from __future__ import annotations

import re

import pytest
from django.db.models import Count, Sum

from apps.judging.models import JudgeSession, Judgment, JudgmentStatus, RunStatus
from tests.judging.helpers import make_pointwise, run_status, start, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SESSION_LINE = re.compile(r"run (\d+): session from batch \d+, (\d+) requests")


def requests_by_worker(worker, run) -> int:
    return sum(int(n) for run_id, n in SESSION_LINE.findall(worker.output())
               if int(run_id) == run.pk)


def test_two_workers_share_the_run_wide_cap_and_both_do_work(personas, fake, start_worker):
    version, dataset = make_pointwise(personas.project, items=150)
    fake.control(latency_ms=150)
    first, second = start_worker(), start_worker()
    run = start(personas.project, version, dataset, fake, concurrency=12)
    wait_for(lambda: run_status(run) == RunStatus.COMPLETED, timeout=120, what="completion",
             worker=first)
    stats = fake.stats()
    # One cap for the run, across both processes; and the run reached it.
    assert 6 < stats["max_in_flight"] <= 12, stats
    assert stats["requests"] == run.planned_calls == 300  # nothing asked twice
    counts = dict(Judgment.objects.filter(run=run).values_list("status")
                  .annotate(n=Count("id")).values_list("status", "n"))
    assert counts == {JudgmentStatus.DONE: 300}  # nothing pending, nothing failed
    assert Judgment.objects.filter(run=run).aggregate(n=Sum("requests"))["n"] == 300
    wait_for(lambda: requests_by_worker(first, run) + requests_by_worker(second, run) == 300,
             timeout=10, what="both session logs")
    assert requests_by_worker(first, run) > 0 and requests_by_worker(second, run) > 0
    assert not JudgeSession.objects.filter(run=run).exists()  # slots given back


def test_a_run_with_one_slot_never_has_two_calls_in_flight(personas, fake, start_worker):
    version, dataset = make_pointwise(personas.project, items=20)
    fake.control(latency_ms=50)
    start_worker(concurrency=2)
    start_worker()
    run = start(personas.project, version, dataset, fake, concurrency=1)
    wait_for(lambda: run_status(run) == RunStatus.COMPLETED, timeout=90, what="completion")
    assert fake.stats()["max_in_flight"] == 1
    assert fake.stats()["requests"] == 40
