"""The run coordinator (beat): the database is the truth, so it re-sends batches whose worker
stopped beating, keeps the dispatch window full, and finishes runs whose work is all final.

In-process and without a worker: the messages it would send are the on-commit callbacks it
registers, counted here. The real-worker tests (test_worker_reliability.py) kill a worker and
watch the coordinator bring the run home; these pin each decision on its own, quickly.
"""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.utils import timezone

from apps.judging.coordinator import coordinate
from apps.judging.models import (
    BatchStatus,
    JudgeBatch,
    Judgment,
    JudgmentStatus,
    RunStatus,
    Verdict,
)
from apps.judging.planning import RunSettings, judge_run_cancel, judge_run_start
from tests.judging.helpers import make_pointwise

# 2 criteria per item, 4 calls per batch: 10 items make 5 batches, 2 of them sent at a time.
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


def _batch(run, number: int) -> JudgeBatch:
    return JudgeBatch.objects.get(run=run, number=number)


def _ago(seconds: float):
    return timezone.now() - timezone.timedelta(seconds=seconds)


def test_the_plan_sends_only_the_first_window_of_batches(run):
    statuses = dict(JudgeBatch.objects.filter(run=run).values_list("number", "status"))
    assert statuses == {0: BatchStatus.DISPATCHED, 1: BatchStatus.DISPATCHED,
                        2: BatchStatus.PENDING, 3: BatchStatus.PENDING, 4: BatchStatus.PENDING}


def test_a_batch_whose_worker_stopped_beating_is_sent_again(
        run, django_capture_on_commit_callbacks):
    JudgeBatch.objects.filter(run=run, number=0).update(
        status=BatchStatus.RUNNING, heartbeat_at=_ago(61), lease="dead-worker")
    with django_capture_on_commit_callbacks() as sent:
        report = coordinate()
    assert report == {"runs": 1, "resent": 1, "finished": 0}
    assert len(sent) == 1  # batch 0 again; the window (0 and 1) is full, nothing new
    again = _batch(run, 0)
    assert (again.status, again.dispatches, again.lease) == (BatchStatus.DISPATCHED, 2, "")
    assert _batch(run, 1).dispatches == 1
    assert run.status == RunStatus.QUEUED


def test_a_message_lost_on_the_broker_is_sent_again(run, django_capture_on_commit_callbacks):
    JudgeBatch.objects.filter(run=run, number=1).update(dispatched_at=_ago(61))
    with django_capture_on_commit_callbacks() as sent:
        report = coordinate()
    assert report["resent"] == 1 and len(sent) == 1
    assert _batch(run, 1).dispatches == 2 and _batch(run, 0).dispatches == 1


def test_a_batch_that_is_beating_is_left_to_its_worker(run, django_capture_on_commit_callbacks):
    JudgeBatch.objects.filter(run=run, number=0).update(
        status=BatchStatus.RUNNING, heartbeat_at=_ago(5), lease="live-worker")
    with django_capture_on_commit_callbacks() as sent:
        report = coordinate()
    assert report == {"runs": 1, "resent": 0, "finished": 0}
    assert sent == []
    assert _batch(run, 0).lease == "live-worker" and _batch(run, 0).dispatches == 1


def test_a_finished_batch_makes_room_for_the_next(run, django_capture_on_commit_callbacks):
    Judgment.objects.filter(run=run, batch=0).update(status=JudgmentStatus.DONE, value="3")
    JudgeBatch.objects.filter(run=run, number=0).update(status=BatchStatus.DONE)
    with django_capture_on_commit_callbacks() as sent:
        coordinate()
    assert len(sent) == 1
    assert _batch(run, 2).status == BatchStatus.DISPATCHED
    assert _batch(run, 3).status == BatchStatus.PENDING


def test_a_run_whose_work_is_all_final_is_completed_with_its_verdicts(
        run, django_capture_on_commit_callbacks):
    # The tasks wrote every result but died before building verdicts or closing their batches.
    Judgment.objects.filter(run=run).update(status=JudgmentStatus.DONE, value="3",
                                            finished_at=timezone.now())
    with django_capture_on_commit_callbacks() as sent:
        report = coordinate()
    assert report == {"runs": 1, "resent": 0, "finished": 1}
    assert sent == []
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and run.finished_at is not None
    assert Verdict.objects.filter(run=run).count() == 10 * 2
    assert set(Verdict.objects.filter(run=run).values_list("value", flat=True)) == {"3"}
    # The next tick finds nothing to do and writes nothing twice.
    assert coordinate() == {"runs": 0, "resent": 0, "finished": 0}
    assert Verdict.objects.filter(run=run).count() == 10 * 2


def test_a_run_whose_every_call_failed_ends_failed_never_completed(run):
    Judgment.objects.filter(run=run).update(status=JudgmentStatus.FAILED, error_kind="rate_limit")
    assert coordinate()["finished"] == 1
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error_message == ("no call was judged: 20 of 20 calls failed or invalid (100%): "
                                 "rate_limit 20")
    assert not Verdict.objects.filter(run=run).exists()  # a failure is never a score


def test_a_cancelled_run_is_left_alone(run, django_capture_on_commit_callbacks):
    judge_run_cancel(run=run)
    JudgeBatch.objects.filter(run=run, number=0).update(
        status=BatchStatus.RUNNING, heartbeat_at=_ago(600))
    with django_capture_on_commit_callbacks() as sent:
        report = coordinate()
    assert report == {"runs": 0, "resent": 0, "finished": 0}
    assert sent == []
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
