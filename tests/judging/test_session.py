"""A worker's session on a run (apps/judging/session.py), in this process against the fake
provider: it takes the run's next batches while its calls are in flight, and a hung call holds
one slot, not the session."""

from __future__ import annotations

import pytest
from django.test import override_settings

from apps.judging.executor import run_batch
from apps.judging.models import BatchStatus, JudgeBatch, JudgeSession, Judgment, RunStatus
from tests.judging.helpers import make_pointwise, start

pytestmark = pytest.mark.django_db(transaction=True)

SMALL_BATCHES = {"JUDGE_BATCH_MIN_CALLS": 10, "JUDGE_BATCH_WAVES": 1}


@pytest.fixture(autouse=True)
def _no_provider_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def test_one_message_works_through_every_free_batch_of_the_run(personas, fake):
    version, dataset = make_pointwise(personas.project, items=30)
    with override_settings(**SMALL_BATCHES):
        run = start(personas.project, version, dataset, fake, concurrency=4)
    assert JudgeBatch.objects.filter(run=run).count() == 6
    assert run_batch(run.pk, 0) == "done"
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert set(JudgeBatch.objects.filter(run=run).values_list("status", flat=True)) == {
        BatchStatus.DONE}
    assert fake.stats()["requests"] == 60
    assert fake.stats()["max_in_flight"] <= 4
    assert not JudgeSession.objects.filter(run=run).exists()
    # The messages still on the broker for the batches it took find nothing to do.
    assert run_batch(run.pk, 3) == "inactive"


def test_a_second_delivery_of_a_taken_batch_joins_with_another_batch(personas, fake):
    version, dataset = make_pointwise(personas.project, items=10)
    with override_settings(**SMALL_BATCHES):
        run = start(personas.project, version, dataset, fake, concurrency=2)
    from django.utils import timezone

    JudgeBatch.objects.filter(run=run, number=0).update(
        status=BatchStatus.RUNNING, lease="someone-else", heartbeat_at=timezone.now())
    with override_settings(JUDGE_SESSION_MAX_S=0):
        assert run_batch(run.pk, 0) == "done"
    # Batch 1 was done instead; batch 0 is left to the session that holds it.
    assert set(Judgment.objects.filter(run=run, batch=1).values_list("status", flat=True)) == {
        "done"}
    assert set(Judgment.objects.filter(run=run, batch=0).values_list("status", flat=True)) == {
        "pending"}


@override_settings(**SMALL_BATCHES, JUDGE_BACKOFF_BASE_S=0.01, JUDGE_BACKOFF_CAP_S=0.05)
def test_a_hung_call_holds_one_slot_while_the_session_goes_on(personas, fake):
    version, dataset = make_pointwise(personas.project, items=20)
    run = start(personas.project, version, dataset, fake, concurrency=8, timeout_s=4.0)
    assert JudgeBatch.objects.filter(run=run).count() == 4
    # About one request in twenty hangs (past the call's timeout); the others answer in 20 ms.
    fake.control(latency_ms=20, rate_hang=0.05, hang_s=60, seed=5)
    assert run_batch(run.pk, 0) == "done"
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    rows = list(Judgment.objects.filter(run=run).order_by("finished_at"))
    hung = [r for r in rows if r.attempts > 1]
    assert hung
    others = [r for r in rows if r.attempts == 1]
    assert len(others) == 40 - len(hung)
    # Every other call, in every batch, ended before the hung ones timed out.
    first_timeout = min(r.finished_at for r in hung)
    late = [(r.batch, r.finished_at) for r in others if r.finished_at >= first_timeout]
    assert not late, (first_timeout, [(r.batch, r.finished_at) for r in hung], late)
    assert fake.stats()["faults"].get("hang", 0) >= len(hung)
