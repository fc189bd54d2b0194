"""A hostile provider, one batch at a time in this process (the real litellm client, the real
database, the fake server): poison answers are each call's outcome and never re-bill a batch,
per-prompt refusals fail the call and not the run, a server that cannot be reached stops the
run within seconds naming the URL and the cause, and the final state says what happened
(issue 11 sections 1-3; the same with a real worker: test_worker_faults.py)."""

from __future__ import annotations

import socket
import time

import pytest
from django.db.models import Count
from django.test import override_settings

from apps.datasets.models import Item
from apps.judging.executor import REFUSALS_BEFORE_STOP, run_batch
from apps.judging.models import JudgeBatch, JudgeRun, Judgment, JudgmentStatus, RunStatus
from apps.judging.planning import judge_run_retry_failed
from tests.judging.helpers import make_pointwise, start

pytestmark = pytest.mark.django_db(transaction=True)

FAST_RETRIES = {"JUDGE_MAX_ATTEMPTS": 2, "JUDGE_BACKOFF_BASE_S": 0.01, "JUDGE_BACKOFF_CAP_S": 0.05}


@pytest.fixture(autouse=True)
def _no_provider_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there once the socket is closed


def run_all(run: JudgeRun) -> None:
    for number in list(JudgeBatch.objects.filter(run=run).order_by("number")
                       .values_list("number", flat=True)):
        run_batch(run.pk, number)
    run.refresh_from_db()


def statuses(run: JudgeRun) -> dict[str, int]:
    return dict(Judgment.objects.filter(run=run).values_list("status")
                .annotate(n=Count("id")).values_list("status", "n"))


def kinds(run: JudgeRun) -> dict[str, int]:
    return dict(Judgment.objects.filter(run=run).exclude(error_kind="")
                .values_list("error_kind").annotate(n=Count("id")).values_list("error_kind", "n"))


def assert_nothing_lost(run: JudgeRun, fake) -> None:
    """planned = done + invalid + failed, nothing pending, no key twice, one request a call."""
    counts = statuses(run)
    assert JudgmentStatus.PENDING not in counts, counts
    assert sum(counts.values()) == run.planned_calls
    keys = Judgment.objects.filter(run=run).values("item_id", "criterion_key", "sample",
                                                   "order").annotate(n=Count("id"))
    assert all(row["n"] == 1 for row in keys)
    assert fake.stats()["requests"] == run.planned_calls


# -- poison answers ---------------------------------------------------------------------------
def test_an_escaped_nul_in_the_rationale_is_stored_as_a_replacement_character(personas, fake):
    version, dataset = make_pointwise(personas.project, items=5)
    fake.control(rate_nul_escaped=1.0)
    run = start(personas.project, version, dataset, fake)
    run_all(run)
    assert run.status == RunStatus.COMPLETED
    assert statuses(run) == {JudgmentStatus.DONE: 10}
    for judgment in Judgment.objects.filter(run=run):
        assert judgment.rationale == "contains a \ufffd NUL"
    assert_nothing_lost(run, fake)


def test_a_raw_nul_in_the_answer_is_read_and_stored_without_it(personas, fake):
    version, dataset = make_pointwise(personas.project, items=5)
    fake.control(rate_nul_raw=1.0)
    run = start(personas.project, version, dataset, fake)
    run_all(run)
    assert run.status == RunStatus.COMPLETED
    for judgment in Judgment.objects.filter(run=run).select_related("item"):
        assert "\x00" not in judgment.raw_output and "\ufffd" in judgment.raw_output
        assert judgment.rationale == "raw \ufffd NUL"
    assert_nothing_lost(run, fake)


@pytest.mark.parametrize("fault, kind, words", [
    ("huge_int", "invalid_scale", ""),
    ("array", "invalid_json", "an array"),
])
def test_a_poison_verdict_is_invalid_and_a_run_of_nothing_else_fails(personas, fake, fault,
                                                                     kind, words):
    version, dataset = make_pointwise(personas.project, items=5)
    fake.control(**{f"rate_{fault}": 1.0})
    run = start(personas.project, version, dataset, fake)
    run_all(run)
    assert statuses(run) == {JudgmentStatus.INVALID: 10}
    assert kinds(run) == {kind: 10}
    judgment = Judgment.objects.filter(run=run).first()
    assert words in judgment.error_message and judgment.raw_output  # kept for the user
    assert run.status == RunStatus.FAILED
    assert run.error_message == (f"no call was judged: 10 of 10 calls failed or invalid "
                                 f"(100%): {kind} 10")
    assert_nothing_lost(run, fake)


def test_a_few_poison_answers_end_completed_with_failures_and_nothing_is_asked_twice(
        personas, fake):
    version, dataset = make_pointwise(personas.project, items=60)
    fake.control(seed=5, rate_nul_raw=0.04, rate_huge_int=0.04, rate_array=0.04,
                 rate_nul_escaped=0.04)
    run = start(personas.project, version, dataset, fake, concurrency=8)
    run_all(run)
    counts = statuses(run)
    assert 0 < counts.get(JudgmentStatus.INVALID, 0) <= 0.2 * run.planned_calls
    assert run.status == RunStatus.COMPLETED_WITH_FAILURES
    assert set(kinds(run)) == {"invalid_scale", "invalid_json"}
    assert_nothing_lost(run, fake)


# -- per-prompt refusals -----------------------------------------------------------------------
def test_a_content_filter_400_fails_that_call_only_and_the_run_goes_on(personas, fake):
    version, dataset = make_pointwise(personas.project, items=40)
    fake.control(seed=3, content_filter_share=0.1)
    run = start(personas.project, version, dataset, fake)
    run_all(run)
    refused = Judgment.objects.filter(run=run, status=JudgmentStatus.FAILED)
    assert 0 < refused.count() <= 0.2 * run.planned_calls
    assert kinds(run) == {"content_policy": refused.count()}
    assert set(refused.values_list("attempts", flat=True)) == {1}  # never retried
    assert fake.stats()["faults"]["content_filter"] == refused.count()
    assert run.status == RunStatus.COMPLETED_WITH_FAILURES
    assert run.error_message == ""
    assert_nothing_lost(run, fake)
    # The refusal belongs to the prompt: asked again, the same prompts are refused again.
    first = set(refused.values_list("pk", flat=True))
    judge_run_retry_failed(run=run)
    run_all(run)
    assert set(Judgment.objects.filter(run=run, status=JudgmentStatus.FAILED)
               .values_list("pk", flat=True)) == first
    assert run.status == RunStatus.COMPLETED_WITH_FAILURES


def test_a_context_window_error_fails_the_long_prompts_only(personas, fake):
    version, dataset = make_pointwise(personas.project, items=10)
    Item.objects.filter(dataset=dataset, external_id="i3").update(response="word " * 3000)
    fake.control(max_context_tokens=2000)
    run = start(personas.project, version, dataset, fake)
    run_all(run)
    failed = Judgment.objects.filter(run=run, status=JudgmentStatus.FAILED)
    assert set(failed.values_list("item__external_id", flat=True)) == {"i3"}
    assert kinds(run) == {"context_window": 2}
    assert "maximum context length" in failed.first().error_message
    assert run.status == RunStatus.COMPLETED_WITH_FAILURES  # 2 of 20
    assert_nothing_lost(run, fake)


def test_a_run_whose_first_calls_are_all_refused_stops_instead_of_asking_every_prompt(
        personas, fake):
    version, dataset = make_pointwise(personas.project, items=100)
    fake.control(content_filter_share=1.0)
    run = start(personas.project, version, dataset, fake, concurrency=4)
    run_batch(run.pk, 0)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert f"the first {REFUSALS_BEFORE_STOP} calls were all refused" in run.error_message
    assert fake.stats()["requests"] < REFUSALS_BEFORE_STOP + 4
    assert statuses(run)[JudgmentStatus.PENDING] > 150  # kept for a resume


# -- a server that cannot be reached ------------------------------------------------------------
def test_a_closed_port_stops_the_run_within_seconds_naming_the_url(personas, fake):
    version, dataset = make_pointwise(personas.project, items=60)
    url = closed_port_url()
    run = start(personas.project, version, dataset, fake, api_base=url, concurrency=20)
    began = time.monotonic()
    assert run_batch(run.pk, 0) == "stopped"
    assert time.monotonic() - began < 5
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error_message.startswith(f"unreachable: {url}: connection refused")
    # Nothing was answered: the work stays pending for a resume once the server is up.
    assert statuses(run) == {JudgmentStatus.PENDING: run.planned_calls}


def test_a_name_that_does_not_resolve_stops_the_run_naming_the_url_and_dns(personas, fake):
    version, dataset = make_pointwise(personas.project, items=5)
    url = "http://no-such-host.invalid/v1"
    with override_settings(ALLOWED_API_BASES=["http://127.0.0.1:", "http://no-such-host.invalid"]):
        run = start(personas.project, version, dataset, fake, api_base=url)
        began = time.monotonic()
        run_batch(run.pk, 0)
    assert time.monotonic() - began < 10
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error_message.startswith(f"unreachable: {url}: the host name does not resolve")


# JUDGE_SESSION_MAX_S=0: each session works on its own batch only (no next free batch).
@override_settings(**FAST_RETRIES, JUDGE_SESSION_MAX_S=0)
def test_a_server_lost_after_answers_is_retried_as_a_blip_not_a_wrong_url(personas, fake):
    version, dataset = make_pointwise(personas.project, items=40)
    with override_settings(JUDGE_BATCH_MIN_CALLS=20, JUDGE_BATCH_WAVES=1):
        run = start(personas.project, version, dataset, fake, concurrency=4)
    assert JudgeBatch.objects.filter(run=run).count() == 4
    run_batch(run.pk, 0)
    JudgeRun.objects.filter(pk=run.pk).update(api_base=closed_port_url())
    run.refresh_from_db()
    run_batch(run.pk, 1)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING  # not stopped: the provider answered this run
    unreachable = Judgment.objects.filter(run=run, batch=1)
    assert set(unreachable.values_list("status", "error_kind", "attempts")) == {
        (JudgmentStatus.FAILED, "unreachable", 2)}


# -- the odd-input matrix, from answer to row -------------------------------------------------
ODD_ANSWERS = {
    "raw NUL": '{"value": 3, "rationale": "a\x00b"}',
    "escaped NUL": '{"value": 3, "rationale": "a\\u0000b"}',
    "lone surrogate": '{"value": 3, "rationale": "\\ud800 alone"}',
    "raw lone surrogate": '{"value": 3, "rationale": "x\ud800y"}',
    "5,000-digit integer": '{"value": ' + "7" * 5000 + "}",
    "NaN": '{"value": NaN}',
    "Infinity": '{"value": Infinity}',
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "array of the verdict": '[{"value": 3}]',
    "array": "[3]",
    "empty": "",
    "ten megabytes": '{"value": 3, "rationale": "' + "x" * 10_000_000 + '"}',
    "wrong shape": '{"score": 3}',
}


@pytest.mark.parametrize("name", list(ODD_ANSWERS))
def test_every_odd_answer_becomes_a_stored_outcome(personas, fake, name):
    from apps.judging.executor import Call, _result_from_text
    from apps.judging.writer import write_results
    from apps.rubrics.selectors import judge_spec

    version, dataset = make_pointwise(personas.project, items=1)
    run = start(personas.project, version, dataset, fake)
    judgment = Judgment.objects.filter(run=run, criterion_key="correct").get()
    criterion = next(c for c in judge_spec(version)["criteria"] if c["key"] == "correct")
    call = Call(judgment.pk, criterion, False, [], "key", 0)
    write_results([_result_from_text(call, ODD_ANSWERS[name], attempts=1)])
    judgment.refresh_from_db()
    assert judgment.status in (JudgmentStatus.DONE, JudgmentStatus.INVALID)
    if judgment.status == JudgmentStatus.INVALID:
        assert judgment.error_kind.startswith("invalid_") and judgment.error_message
        assert judgment.value == ""
    else:
        assert judgment.value == "3"
    assert "\x00" not in judgment.raw_output + judgment.rationale
    assert len(judgment.raw_output) <= 20_000
