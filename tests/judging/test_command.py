"""`manage.py judge_run`: start a run from the command line; with --wait, block and print one
JSON object, exiting 0 only if the run completed. Every bad input exits non-zero with a
one-line reason, before anything is planned.

The --wait tests marked slow run the command as its own process against a real Celery worker
(the contract a CI pipeline relies on); the others need no worker.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError
from django.db import connections

from apps.judging.executor import run_batch
from apps.judging.models import JudgeBatch, JudgeRun, Judgment, RunStatus
from apps.judging.planning import judge_run_cancel
from apps.rubrics.services import rubric_draft
from tests.judging.helpers import make_pointwise
from tests.realparts import ROOT, process_env

SUMMARY_KEYS = {"run", "status", "done", "failed", "calls", "cached", "cost_usd", "elapsed_s"}
FAKE_BASE = "http://127.0.0.1:9/v1"


def base_args(**overrides) -> list[str]:
    options = {"--project": "acme", "--rubric": "quality", "--dataset": "answers",
               "--model": "openai/fake-judge", "--api-base": FAKE_BASE, **overrides}
    args = []
    for name, value in options.items():
        if value is not None:
            args += [name, value]
    return args


def judge_run(*args: str) -> str:
    out = io.StringIO()
    call_command("judge_run", *args, stdout=out)
    return out.getvalue()


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        judge_run(*args)
    message = str(caught.value)
    assert message and "\n" not in message
    return message


@pytest.fixture
def world(personas):
    return make_pointwise(personas.project, items=4)


# -- starting -----------------------------------------------------------------------------------
def test_without_wait_it_prints_the_run_and_returns(world):
    out = judge_run(*base_args(), "--samples", "2", "--concurrency", "3", "--no-cache")
    summary = json.loads(out)
    run = JudgeRun.objects.get()
    assert summary == {"run": run.pk, "status": "queued", "planned_calls": 16}
    assert (run.samples, run.concurrency, run.use_cache, run.api_base) == (2, 3, False,
                                                                          FAKE_BASE)


def test_a_named_version_and_a_sample_of_items_are_used(world):
    version, _ = world
    out = judge_run(*base_args(), "--version", "1", "--subset", "sample:2:5", "--name", "mini")
    run = JudgeRun.objects.get(pk=json.loads(out)["run"])
    assert (run.rubric_version_id, run.item_count, run.name) == (version.pk, 2, "mini")


# -- bad inputs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides,extra,reason", [
    ({"--project": "nope"}, [], "no project with slug 'nope'"),
    ({"--rubric": "nope"}, [], "no rubric 'nope' in project 'acme'"),
    ({"--dataset": "nope"}, [], "no dataset 'nope' in project 'acme'"),
    ({}, ["--version", "7"], "rubric 'quality' has no version 7"),
    ({}, ["--subset", "some"], "--subset 'some': use all, labelled or sample:N[:SEED]"),
    ({}, ["--subset", "sample:x"], "--subset 'sample:x'"),
    ({}, ["--subset", "sample:0"], "subset: Give the sample size."),
    ({}, ["--subset", "labelled"], "subset: No item matches: nothing to judge."),
    ({}, ["--samples", "0"], "samples: From 1 to 20 samples per item."),
    ({}, ["--concurrency", "0"], "concurrency: From 1 to 1,000 calls in flight."),
    ({}, ["--timeout", "0"], "timeout_s: From 1 to 3,600 seconds."),
    ({}, ["--wait", "--poll", "0"], "--poll 0.0: give seconds, more than 0 and up to 60"),
    ({"--model": ""}, [], "model: Name a litellm model"),
    ({"--api-base": "gpu-box:8000"}, [], "api_base: An http:// or https:// URL"),
])
def test_bad_input_is_refused_with_a_one_line_reason(world, overrides, extra, reason):
    assert reason in refused(*base_args(**overrides), *extra)
    assert not JudgeRun.objects.exists()


def test_a_missing_key_without_an_api_base_is_named(world, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    message = refused(*base_args(**{"--model": "openai/gpt-4.1-mini", "--api-base": None}))
    assert message.startswith("model: openai/gpt-4.1-mini needs OPENAI_API_KEY")
    assert not JudgeRun.objects.exists()


def test_an_unpublished_version_is_refused(world):
    version, _ = world
    draft = rubric_draft(rubric=version.rubric)
    message = refused(*base_args(), "--version", str(draft.number))
    assert message.startswith("version: Publish the rubric version first")


def test_a_rubric_without_a_published_version_is_refused(personas, world):
    from apps.rubrics.services import rubric_create

    rubric_create(project=personas.project, slug="fresh", name="Fresh", mode="pointwise")
    assert refused(*base_args(**{"--rubric": "fresh"})) == (
        "rubric 'fresh' has no published version")


def test_the_cap_refusal_shows_the_count(personas, world):
    personas.project.max_queued_calls = 7
    personas.project.save()
    message = refused(*base_args())
    assert "This run would queue 8 model calls" in message
    assert "cap of 7" in message


def test_a_bad_input_exits_non_zero_from_the_shell(world, monkeypatch, capsys):
    # run_from_argv closes every connection on the way out, which would end the test database.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "judge_run", *base_args(**{"--dataset": "x"})])
    assert exited.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == "CommandError: no dataset 'x' in project 'acme'; datasets: answers"


# -- --wait, in this process ----------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_wait_prints_the_summary_and_succeeds_when_the_run_completes(world, fake, monkeypatch):
    def work_instead_of_sleeping(seconds):
        run = JudgeRun.objects.get()
        for number in JudgeBatch.objects.filter(run=run).values_list("number", flat=True):
            run_batch(run.pk, number)

    monkeypatch.setattr("apps.judging.management.commands.judge_run.time.sleep",
                        work_instead_of_sleeping)
    out = judge_run(*base_args(**{"--api-base": fake.url}), "--wait")
    summary = json.loads(out)
    assert set(summary) >= SUMMARY_KEYS
    assert (summary["status"], summary["done"], summary["failed"], summary["calls"],
            summary["cached"], summary["cost_usd"]) == ("completed", 8, 0, 8, 0, None)
    assert summary["elapsed_s"] >= 0


@pytest.mark.django_db(transaction=True)
def test_wait_fails_when_the_run_is_cancelled(world, monkeypatch):
    def cancel_instead_of_sleeping(seconds):
        judge_run_cancel(run=JudgeRun.objects.get())

    monkeypatch.setattr("apps.judging.management.commands.judge_run.time.sleep",
                        cancel_instead_of_sleeping)
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("judge_run", *base_args(), "--wait", stdout=out)
    run = JudgeRun.objects.get()
    assert str(caught.value) == f"run {run.pk} ended cancelled"
    summary = json.loads(out.getvalue())
    assert (summary["status"], summary["done"]) == ("cancelled", 0)


def _work_instead_of_sleeping(seconds):
    run = JudgeRun.objects.get()
    for number in JudgeBatch.objects.filter(run=run).values_list("number", flat=True):
        run_batch(run.pk, number)


@pytest.mark.django_db(transaction=True)
def test_wait_exits_1_on_completed_with_failures_unless_they_are_accepted(
        personas, fake, monkeypatch):
    make_pointwise(personas.project, items=10)
    from apps.datasets.models import Item

    # One item of ten is too long for the context window: 2 of 20 calls fail.
    Item.objects.filter(external_id="i4").update(response="word " * 3000)
    fake.control(max_context_tokens=2000)
    monkeypatch.setattr("apps.judging.management.commands.judge_run.time.sleep",
                        _work_instead_of_sleeping)
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("judge_run", *base_args(**{"--api-base": fake.url}), "--wait", stdout=out)
    first = JudgeRun.objects.get()
    assert str(caught.value) == f"run {first.pk} ended completed_with_failures"
    summary = json.loads(out.getvalue())
    assert (summary["status"], summary["planned"], summary["done"], summary["failed"],
            summary["pending"], summary["failures"]) == (
        "completed_with_failures", 20, 18, 2, 0, {"context_window": 2})
    JudgeRun.objects.all().delete()
    out = judge_run(*base_args(**{"--api-base": fake.url}), "--wait", "--accept-failures",
                    "--no-cache")
    assert json.loads(out)["status"] == "completed_with_failures"


@pytest.mark.django_db(transaction=True)
def test_wait_prints_the_summary_only_after_batches_at_work_have_written(world, monkeypatch):
    from django.utils import timezone

    from apps.judging.models import BatchStatus

    polls = []

    def fail_while_a_batch_is_at_work(seconds):
        run = JudgeRun.objects.get()
        polls.append(run.status)
        if run.status == RunStatus.QUEUED:  # another batch holds its lease and is calling
            JudgeBatch.objects.filter(run=run).update(status=BatchStatus.RUNNING,
                                                      heartbeat_at=timezone.now())
            JudgeRun.objects.filter(pk=run.pk).update(status=RunStatus.FAILED,
                                                      error_message="auth: stopped")
        elif len(polls) == 3:  # its answers are written and the lease released
            Judgment.objects.filter(run=run).update(status="done", value="3")
            JudgeBatch.objects.filter(run=run).update(status=BatchStatus.DONE)

    monkeypatch.setattr("apps.judging.management.commands.judge_run.time.sleep",
                        fail_while_a_batch_is_at_work)
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("judge_run", *base_args(), "--wait", stdout=out)
    assert len(polls) == 3  # it waited for the batch after the run had failed
    summary = json.loads(out.getvalue())
    assert (summary["status"], summary["done"], summary["pending"]) == ("failed", 8, 0)


# -- --wait, a real worker and the command as its own process -------------------------------
def run_command(*args: str, worker) -> subprocess.CompletedProcess:
    env = process_env({key: value for key, value in os.environ.items()
                       if key != "OPENAI_API_KEY"})
    try:
        return subprocess.run([sys.executable, "manage.py", "judge_run", *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"judge_run --wait did not return; stderr:\n{exc.stderr}\n"
                             f"--- worker log ---\n{worker.output()[-4000:]}") from None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_wait_on_a_worker_prints_one_json_object_and_exits_0(world, fake, start_worker):
    worker = start_worker()
    done = run_command(*base_args(**{"--api-base": fake.url}), "--wait", "--poll", "0.2",
                       worker=worker)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert set(summary) >= SUMMARY_KEYS
    run = JudgeRun.objects.get()
    assert summary["run"] == run.pk and run.status == RunStatus.COMPLETED
    assert (summary["status"], summary["done"], summary["failed"], summary["calls"],
            summary["cached"], summary["cost_usd"]) == ("completed", 8, 0, 8, 0, None)
    assert summary["elapsed_s"] > 0
    assert Judgment.objects.filter(run=run, status="done").count() == 8


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_wait_on_a_worker_exits_non_zero_after_a_permanent_error(world, fake, start_worker):
    fake.control(api_key="sk-the-right-key-0123456789")
    worker = start_worker()
    done = run_command(*base_args(**{"--api-base": fake.url}), "--wait", "--poll", "0.2",
                       worker=worker)
    assert done.returncode == 1
    summary = json.loads(done.stdout.strip())
    assert summary["status"] == "failed"
    assert "Incorrect API key" in summary["error"]
    # The reason is the last line (kombu may log a warning about the embedded broker before).
    reason = done.stderr.strip().splitlines()[-1]
    assert reason.startswith(f"CommandError: run {summary['run']} ended failed: auth: ")
