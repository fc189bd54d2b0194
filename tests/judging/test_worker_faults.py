"""A hostile provider against a real Celery worker on the real broker and PostgreSQL, through the
real litellm client (issue 11 section 6): for each fault of the fake provider, the run's final
state, its counts (planned = done + invalid + failed), the provider's request count (nothing
asked twice), no duplicate judgment, and nothing left pending."""

from __future__ import annotations

import json
import socket
import time

import pytest
from django.db.models import Count

from apps.datasets.models import Item
from apps.judging.models import Judgment, JudgmentStatus, RunStatus
from apps.judging.progress import batches_at_work
from tests.judging.helpers import make_pointwise, run_status, start, wait_for
from tests.realparts import Worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker):
    """One worker for the module: each test's run is its own, the worker holds no state."""
    with django_db_blocker.unblock():
        started = Worker(concurrency=1)
        started.wait_ready()
    yield started
    started.stop()


def finished(run, worker, timeout: float = 90):
    wait_for(lambda: run_status(run) not in (RunStatus.QUEUED, RunStatus.RUNNING)
             and not batches_at_work(run), timeout=timeout, what="the run to end", worker=worker)
    run.refresh_from_db()
    return run


def counts(run) -> dict[str, int]:
    return dict(Judgment.objects.filter(run=run).values_list("status")
                .annotate(n=Count("id")).values_list("status", "n"))


def assert_accounted(run, fake) -> dict[str, int]:
    by_status = counts(run)
    assert JudgmentStatus.PENDING not in by_status, by_status
    assert sum(by_status.values()) == run.planned_calls
    keys = (Judgment.objects.filter(run=run).values("item_id", "criterion_key", "sample",
                                                      "order").annotate(n=Count("id")))
    assert keys.count() == run.planned_calls and all(k["n"] == 1 for k in keys)
    # One provider request per planned call: a poison answer never re-asks its batch.
    assert fake.stats()["requests"] == run.planned_calls, fake.stats()
    stored = Judgment.objects.filter(run=run).values_list("raw_output", "rationale")
    assert not any("\x00" in raw or "\x00" in why for raw, why in stored)
    return by_status


@pytest.mark.parametrize("fault, state, kind", [
    ({"rate_nul_escaped": 0.2}, RunStatus.COMPLETED, None),
    ({"rate_nul_raw": 0.2}, RunStatus.COMPLETED, None),
    ({"rate_huge_int": 0.1}, RunStatus.COMPLETED_WITH_FAILURES, "invalid_scale"),
    ({"rate_array": 0.1}, RunStatus.COMPLETED_WITH_FAILURES, "invalid_json"),
    ({"content_filter_share": 0.1}, RunStatus.COMPLETED_WITH_FAILURES, "content_policy"),
], ids=["nul-escaped", "nul-raw", "huge-int", "array", "content-filter-400"])
def test_each_fault_ends_in_a_true_state_with_every_call_accounted_for(
        personas, fake, worker, fault, state, kind):
    version, dataset = make_pointwise(personas.project, items=40)
    fake.control(seed=21, **fault)
    run = finished(start(personas.project, version, dataset, fake, concurrency=8), worker)
    by_status = assert_accounted(run, fake)
    assert run.status == state, (by_status, run.error_message)
    failed = by_status.get(JudgmentStatus.INVALID, 0) + by_status.get(JudgmentStatus.FAILED, 0)
    if kind is None:
        assert failed == 0
        assert Judgment.objects.filter(run=run, rationale__contains="\ufffd").exists()
    else:
        assert 0 < failed <= 0.2 * run.planned_calls
        assert set(Judgment.objects.filter(run=run).exclude(error_kind="")
                   .values_list("error_kind", flat=True)) == {kind}


def test_a_context_window_error_fails_only_the_long_item(personas, fake, worker):
    version, dataset = make_pointwise(personas.project, items=20)
    Item.objects.filter(dataset=dataset, external_id="i7").update(response="word " * 3000)
    fake.control(max_context_tokens=2000)
    run = finished(start(personas.project, version, dataset, fake), worker)
    by_status = assert_accounted(run, fake)
    assert by_status == {JudgmentStatus.DONE: 38, JudgmentStatus.FAILED: 2}
    assert run.status == RunStatus.COMPLETED_WITH_FAILURES
    assert set(Judgment.objects.filter(run=run, status=JudgmentStatus.FAILED)
               .values_list("item__external_id", "error_kind")) == {("i7", "context_window")}


def test_a_closed_port_fails_the_run_within_seconds_naming_the_url(personas, fake, worker):
    version, dataset = make_pointwise(personas.project, items=60)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    began = time.monotonic()
    run = finished(start(personas.project, version, dataset, fake, api_base=url,
                         concurrency=20), worker, timeout=30)
    assert time.monotonic() - began < 10
    assert run.status == RunStatus.FAILED
    assert run.error_message.startswith(f"unreachable: {url}: connection refused")
    # Nothing was asked of anyone, nothing was marked done or failed: it waits for a resume.
    assert counts(run) == {JudgmentStatus.PENDING: run.planned_calls}
    assert fake.stats()["requests"] == 0


def test_judge_run_wait_exits_1_on_failures_unless_accepted_and_names_a_closed_port(
        personas, fake, worker):
    from tests.judging.test_command import base_args, run_command

    make_pointwise(personas.project, items=10)
    Item.objects.filter(external_id="i2").update(response="word " * 3000)
    fake.control(max_context_tokens=2000)
    done = run_command(*base_args(**{"--api-base": fake.url}), "--wait", "--poll", "0.2",
                       "--no-cache", worker=worker)
    assert done.returncode == 1
    summary = json.loads(done.stdout.strip())
    assert (summary["status"], summary["done"], summary["failed"], summary["pending"],
            summary["failures"]) == ("completed_with_failures", 18, 2, 0, {"context_window": 2})
    assert done.stderr.strip().splitlines()[-1] == (
        f"CommandError: run {summary['run']} ended completed_with_failures")
    done = run_command(*base_args(**{"--api-base": fake.url}), "--wait", "--poll", "0.2",
                       "--no-cache", "--accept-failures", worker=worker)
    assert done.returncode == 0, done.stderr[-2000:]

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    began = time.monotonic()
    done = run_command(*base_args(**{"--api-base": url}), "--wait", "--poll", "0.2",
                       worker=worker)
    assert done.returncode == 1 and time.monotonic() - began < 30
    reason = done.stderr.strip().splitlines()[-1]
    assert reason.startswith(f"CommandError: run {json.loads(done.stdout)['run']} "
                             f"ended failed: unreachable: {url}: connection refused")
