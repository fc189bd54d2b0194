"""What a run's end is called, the per-row write, and the delivery budget (docs/decisions/0006).

In-process, without a worker or a provider: each rule on its own, quickly. The real-worker
tests (test_worker_faults.py) show the same rules with the fake provider's faults."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.utils import timezone

from apps.judging.coordinator import coordinate
from apps.judging.models import (
    BatchStatus,
    JudgeBatch,
    JudgeRun,
    Judgment,
    JudgmentStatus,
    RunStatus,
)
from apps.judging.outcome import decide, finalize_if_done, gate_reasons
from apps.judging.planning import RunSettings, judge_run_resume, judge_run_start
from apps.judging.writer import Result, write_results
from tests.judging.helpers import make_pointwise

# 10 items x 2 criteria; 4 calls per batch: 5 batches, 2 sent at a time.
SMALL_BATCHES = {"JUDGE_BATCH_MIN_CALLS": 4, "JUDGE_BATCH_WAVES": 1, "JUDGE_DISPATCH_WINDOW": 2,
                 "JUDGE_BATCH_STALE_S": 60}


@pytest.fixture
def run(personas):
    version, dataset = make_pointwise(personas.project, items=10)
    with override_settings(**SMALL_BATCHES):
        run = judge_run_start(project=personas.project, version=version, dataset=dataset,
                              run_settings=RunSettings(model="openai/fake-judge", concurrency=1,
                                                       api_base="http://127.0.0.1:9/v1"))
        yield run


def _finish(run: JudgeRun, *, done: int, invalid: int = 0, failed: int = 0) -> None:
    ids = list(Judgment.objects.filter(run=run).order_by("id").values_list("id", flat=True))
    assert done + invalid + failed == len(ids)
    Judgment.objects.filter(id__in=ids[:done]).update(status=JudgmentStatus.DONE, value="3")
    Judgment.objects.filter(id__in=ids[done:done + invalid]).update(
        status=JudgmentStatus.INVALID, error_kind="invalid_json")
    Judgment.objects.filter(id__in=ids[done + invalid:]).update(
        status=JudgmentStatus.FAILED, error_kind="content_policy")


# -- the final state -------------------------------------------------------------------------
@pytest.mark.parametrize("planned, done, failed, state", [
    (100, 100, 0, RunStatus.COMPLETED),
    (100, 99, 1, RunStatus.COMPLETED_WITH_FAILURES),
    (100, 80, 20, RunStatus.COMPLETED_WITH_FAILURES),  # exactly the share: still counts
    (100, 79, 21, RunStatus.FAILED),  # more than 20 % failed
    (100, 0, 100, RunStatus.FAILED),  # nothing judged
    (1, 0, 1, RunStatus.FAILED),
    (1, 1, 0, RunStatus.COMPLETED),
])
def test_the_final_state_follows_the_failed_share(planned, done, failed, state):
    assert decide(planned=planned, done=done, failed=failed) == state


@override_settings(JUDGE_RUN_MAX_FAILED_SHARE=0.0)
def test_a_zero_share_makes_any_failure_fail_the_run():
    assert decide(planned=100, done=99, failed=1) == RunStatus.FAILED


def test_a_run_with_some_failures_says_so_and_keeps_no_error(run):
    _finish(run, done=18, invalid=1, failed=1)
    assert finalize_if_done(run)
    run.refresh_from_db()
    assert (run.status, run.error_message) == (RunStatus.COMPLETED_WITH_FAILURES, "")
    assert run.finished_at is not None
    assert gate_reasons(run) == []  # 10 % failed: within the share, evidence for the gate


def test_a_run_with_too_many_failures_fails_with_counts_and_kinds(run):
    _finish(run, done=10, invalid=6, failed=4)
    assert finalize_if_done(run)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error_message == ("more than 20% of the calls failed: 10 of 20 calls failed or "
                                 "invalid (50%): invalid_json 6, content_policy 4")
    assert gate_reasons(run) == [f"run #{run.pk} failed: its verdicts are not evidence"]


def test_the_gate_refuses_a_finished_run_over_the_share(run):
    _finish(run, done=17, failed=3)
    finalize_if_done(run)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED_WITH_FAILURES
    with override_settings(JUDGE_RUN_MAX_FAILED_SHARE=0.1):  # the operator tightened it since
        assert gate_reasons(run) == ["15% of the run's calls failed or were invalid, more than "
                                     "the 10% allowed (JUDGE_RUN_MAX_FAILED_SHARE)"]


def test_a_run_with_work_pending_is_not_finalized(run):
    Judgment.objects.filter(run=run, batch=0).update(status=JudgmentStatus.DONE, value="3")
    assert not finalize_if_done(run)
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED


# -- writes: one bad row never fails the others ------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_row_the_database_refuses_is_written_alone_as_unstorable(run):
    a, b, c = Judgment.objects.filter(run=run).order_by("id")[:3]
    write_results([
        Result(judgment_id=a.pk, status=JudgmentStatus.DONE, value="3", raw_output="{}",
               attempts=1),
        # A value longer than the column: PostgreSQL refuses the whole statement.
        Result(judgment_id=b.pk, status=JudgmentStatus.DONE, value="9" * 500,
               raw_output="x\x00y", attempts=1, prompt_tokens=7),
        Result(judgment_id=c.pk, status=JudgmentStatus.INVALID, raw_output="nul \x00 here",
               rationale="r\ud800", error_kind="invalid_json", error_message="bad \x00",
               attempts=1),
    ])
    a.refresh_from_db(), b.refresh_from_db(), c.refresh_from_db()
    assert (a.status, a.value) == (JudgmentStatus.DONE, "3")
    assert (b.status, b.error_kind, b.value, b.prompt_tokens) == (
        JudgmentStatus.INVALID, "invalid_unstorable", "", 7)
    assert "could not be stored" in b.error_message
    assert (c.status, c.raw_output, c.rationale, c.error_message) == (
        JudgmentStatus.INVALID, "nul \ufffd here", "r\ufffd", "bad \ufffd")
    # Written once: a second write of the same results changes nothing.
    write_results([Result(judgment_id=a.pk, status=JudgmentStatus.FAILED)])
    a.refresh_from_db()
    assert a.status == JudgmentStatus.DONE


# -- the delivery budget ---------------------------------------------------------------------
def _lose(run: JudgeRun, number: int) -> None:
    """Batch `number` was taken by a worker that died without writing anything."""
    JudgeBatch.objects.filter(run=run, number=number).update(
        status=BatchStatus.RUNNING, lease="dead",
        heartbeat_at=timezone.now() - timezone.timedelta(seconds=600))


@override_settings(**SMALL_BATCHES)
def test_a_batch_sent_three_times_without_progress_is_closed_with_the_reason(
        run, django_capture_on_commit_callbacks):
    for delivery in (2, 3):
        _lose(run, 0)
        with django_capture_on_commit_callbacks() as sent:
            coordinate()
        assert len(sent) == 1
        assert JudgeBatch.objects.get(run=run, number=0).dispatches == delivery
    _lose(run, 0)  # the third delivery made no progress either
    with django_capture_on_commit_callbacks() as sent:
        coordinate()
    batch = JudgeBatch.objects.get(run=run, number=0)
    assert (batch.status, batch.dispatches, batch.stalled_deliveries) == (BatchStatus.DONE, 3, 3)
    closed = Judgment.objects.filter(run=run, batch=0)
    assert set(closed.values_list("status", "error_kind")) == {
        (JudgmentStatus.FAILED, "delivery_budget")}
    run.refresh_from_db()
    assert run.error_message == (
        "batch 0 was delivered 3 times without progress (its worker died or its writes failed "
        "each time); it is not sent again: its 4 pending calls were marked failed")
    assert run.status == RunStatus.QUEUED  # the other batches go on
    assert len(sent) == 1  # batch 0 made room: the next batch went out instead


@override_settings(**SMALL_BATCHES)
def test_a_delivery_that_wrote_something_resets_the_budget(run, django_capture_on_commit_callbacks):
    for _ in range(5):
        _lose(run, 0)
        pending = Judgment.objects.filter(run=run, batch=0, status=JudgmentStatus.PENDING)
        first = pending.first()
        if first is not None:  # each delivery wrote one answer before its worker died
            Judgment.objects.filter(pk=first.pk).update(status=JudgmentStatus.DONE, value="3")
        with django_capture_on_commit_callbacks():
            coordinate()
    batch = JudgeBatch.objects.get(run=run, number=0)
    assert batch.stalled_deliveries < 3
    assert not Judgment.objects.filter(run=run, error_kind="delivery_budget").exists()


@override_settings(**SMALL_BATCHES)
def test_resent_calls_count_against_the_projects_cap(run, django_capture_on_commit_callbacks):
    # 20 calls queued; a cap of 22 leaves room to re-send batch 0 (4 calls) not even once.
    project = run.project
    project.max_queued_calls = 22
    project.save()
    _lose(run, 0)
    with django_capture_on_commit_callbacks() as sent:
        coordinate()
    assert sent == []
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "would pass the project's queued-calls cap of 22 (20 queued)" in run.error_message


@override_settings(**SMALL_BATCHES)
def test_resent_calls_within_the_cap_are_counted_and_a_resume_starts_afresh(
        run, django_capture_on_commit_callbacks):
    _lose(run, 0)
    with django_capture_on_commit_callbacks():
        coordinate()
    run.refresh_from_db()
    assert run.requeued_calls == 4
    from apps.judging.delivery import queued_calls

    assert queued_calls(run.project) == 20 + 4
    from apps.judging.planning import judge_run_cancel

    judge_run_cancel(run=run)
    with django_capture_on_commit_callbacks():
        judge_run_resume(run=run)
    run.refresh_from_db()
    assert run.requeued_calls == 0
    assert set(JudgeBatch.objects.filter(run=run).values_list("stalled_deliveries",
                                                                flat=True)) == {0}


@override_settings(**SMALL_BATCHES)
def test_a_batch_back_to_pending_with_calls_left_spends_the_same_budget(
        run, django_capture_on_commit_callbacks):
    # Twice already it came back (its task hit the time limit) without writing anything.
    JudgeBatch.objects.filter(run=run, number=0).update(status=BatchStatus.PENDING,
                                                        stalled_deliveries=2)
    with django_capture_on_commit_callbacks():
        coordinate()
    batch = JudgeBatch.objects.get(run=run, number=0)
    assert batch.status == BatchStatus.DONE and batch.stalled_deliveries == 3
    assert set(Judgment.objects.filter(run=run, batch=0).values_list("error_kind", flat=True)) \
        == {"delivery_budget"}
