"""Nothing paid is lost or paid twice (issue 11, section 4), in this process against the fake
provider through the real litellm client and the real database: answers reach the database
even behind a slow writer, long answers come back from the cache whole, and every request sent
is counted (planned / asked / retried), including retries and "retry failed"."""

from __future__ import annotations

import time

import pytest
from django.db.models import Sum
from django.test import override_settings

from apps.judging import session as session_mod
from apps.judging.executor import run_batch
from apps.judging.models import CallCache, JudgeBatch, Judgment, JudgmentStatus, RunStatus
from apps.judging.planning import judge_run_retry_failed
from apps.judging.progress import run_progress, run_summary
from apps.judging.writer import write_session
from tests.judging.helpers import make_pointwise, start

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_provider_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def run_all(run) -> None:
    for number in list(JudgeBatch.objects.filter(run=run).order_by("number")
                       .values_list("number", flat=True)):
        run_batch(run.pk, number)
    run.refresh_from_db()


def test_a_slow_writer_loses_no_answer_and_nothing_is_asked_twice(personas, fake, monkeypatch):
    version, dataset = make_pointwise(personas.project, items=60)
    flushes = []

    def slow_write(results, sent, paid):
        # Slower than the calls: answers pile up behind the writer, and the last flush is
        # still queued on the database thread when the calls are over.
        time.sleep(0.4)
        flushes.append(len(results))
        write_session(results, sent, paid)

    monkeypatch.setattr(session_mod, "write_session", slow_write)
    fake.control(latency_ms=5)
    run = start(personas.project, version, dataset, fake, concurrency=20)
    assert run_batch(run.pk, 0) == "done"
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert Judgment.objects.filter(run=run, status=JudgmentStatus.DONE).count() == 120
    assert sum(flushes) == 120
    assert fake.stats()["requests"] == 120  # every answer received was written, once
    assert set(Judgment.objects.filter(run=run).values_list("requests", flat=True)) == {1}


def test_a_one_megabyte_answer_comes_back_from_the_cache_whole_and_valid(personas, fake):
    version, dataset = make_pointwise(personas.project, items=2)
    fake.control(rationale_pad=1_000_000)
    first = start(personas.project, version, dataset, fake, concurrency=4)
    run_all(first)
    assert first.status == RunStatus.COMPLETED
    assert fake.stats()["requests"] == 4
    entries = CallCache.objects.filter(model="openai/fake-judge")
    assert entries.count() == 4
    assert all(len(e.content) > 1_000_000 for e in entries)

    fake.reset()
    again = start(personas.project, version, dataset, fake, concurrency=4)
    run_all(again)
    assert fake.stats()["requests"] == 0
    rows = Judgment.objects.filter(run=again)
    assert {(r.status, r.cached) for r in rows} == {(JudgmentStatus.DONE, True)}
    before = {(j.item_id, j.criterion_key): (j.value, j.rationale)
              for j in Judgment.objects.filter(run=first)}
    assert {(r.item_id, r.criterion_key): (r.value, r.rationale) for r in rows} == before


@override_settings(JUDGE_CACHE_MAX_CHARS=5_000)
def test_an_answer_over_the_cache_limit_is_not_cached_and_is_asked_again(personas, fake):
    version, dataset = make_pointwise(personas.project, items=2)
    fake.control(rationale_pad=20_000)
    first = start(personas.project, version, dataset, fake, concurrency=4)
    run_all(first)
    assert first.status == RunStatus.COMPLETED
    assert CallCache.objects.count() == 0
    again = start(personas.project, version, dataset, fake, concurrency=4)
    run_all(again)
    assert fake.stats()["requests"] == 8
    assert set(Judgment.objects.filter(run=again).values_list("status", "cached")) == {
        (JudgmentStatus.DONE, False)}


@override_settings(JUDGE_BACKOFF_BASE_S=0.01, JUDGE_BACKOFF_CAP_S=0.05)
def test_retries_are_counted_as_requests_and_shown_apart(personas, fake):
    version, dataset = make_pointwise(personas.project, items=5)
    fake.control(fail_first_n=2)  # every key: two 500s, then the answer
    run = start(personas.project, version, dataset, fake, concurrency=5)
    run_all(run)
    assert run.status == RunStatus.COMPLETED
    progress = run_progress(run)
    assert fake.stats()["requests"] == 30
    assert (progress.planned, progress.asked, progress.calls, progress.retried) == (10, 10, 30,
                                                                                     20)
    summary = run_summary(run)
    assert (summary["planned"], summary["calls"], summary["asked"], summary["retried"]) == (
        10, 30, 10, 20)


def test_retry_failed_adds_its_requests_to_the_count(personas, fake):
    version, dataset = make_pointwise(personas.project, items=10)
    fake.control(rate_malformed=0.5, seed=4)
    run = start(personas.project, version, dataset, fake, concurrency=5, use_cache=False)
    run_all(run)
    invalid = Judgment.objects.filter(run=run, status=JudgmentStatus.INVALID).count()
    assert 0 < invalid < 20
    first = fake.stats()["requests"]
    assert run_progress(run).calls == first == 20
    fake.control(rate_malformed=0.0)
    assert judge_run_retry_failed(run=run) == invalid
    run_all(run)
    progress = run_progress(run)
    assert fake.stats()["requests"] == 20 + invalid
    assert (progress.calls, progress.asked, progress.retried) == (20 + invalid, 20, invalid)
    assert Judgment.objects.filter(run=run).aggregate(n=Sum("requests"))["n"] == 20 + invalid
