"""judge_probe end to end: the command starts the probe run, a real Celery worker process runs
its batches on the real broker and database through the real litellm client against the
gullible fake, and --wait prints the figures: exactly the "step by step" master keys fool it,
and --fail-on-gate exits non-zero. Odd command lines fail with one line, nothing made."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from apps.datasets.models import Dataset
from apps.probes.models import ProbeRun
from tests.probes.worlds import gullible_world

pytestmark = pytest.mark.django_db(transaction=True)


def _probe(*extra):
    out = io.StringIO()
    call_command("judge_probe", "--project", "acme", "--rubric", "len", "--dataset",
                 "answers", *extra, "--format", "json", stdout=out)
    return out.getvalue()


@pytest.mark.slow
def test_judge_probe_waits_for_the_worker_and_finds_the_fooling_probes(personas, fake,
                                                                       start_worker):
    world = gullible_world(personas.project, fake)
    start_worker(concurrency=2)
    out = io.StringIO()
    with pytest.raises(CommandError, match="do not pass the gate: master_key_reasoning"):
        call_command("judge_probe", "--project", "acme", "--rubric", "len", "--dataset",
                     "answers", "--judge", "fake-judge", "--per-probe", "40", "--wait",
                     "--poll", "0.2", "--fail-on-gate", "--format", "json", stdout=out)
    figures = json.loads(out.getvalue())
    assert figures["status"] == "completed" and figures["judge"] == "fake-judge"
    fooling = {name for name, p in figures["probes"].items() if p["fooled"]}
    assert fooling == {"master_key_reasoning"}
    assert all(p["failed"] == 0 and p["pending"] == 0 for p in figures["probes"].values())
    assert figures["gate"]["passed"] is False
    # The calibration report of the same judge carries the probes and their gate reason.
    report = io.StringIO()
    call_command("calibration_report", "--project", "acme", "--rubric", "len", "--dataset",
                 "answers", "--judge", str(world.base.pk), "--format", "json", stdout=report)
    data = json.loads(report.getvalue())
    assert data["probes"]["probe_run"] == figures["probe_run"]
    assert any(r.startswith("probes: master_key_reasoning:") for r in data["gate"]["reasons"])


@pytest.mark.parametrize("args,message", [
    (["--judge", "nobody"], "No judge 'nobody'"),
    (["--judge", "fake-judge", "--probes", "bogus"], "unknown probe"),
    (["--judge", "fake-judge", "--per-probe", "0"], "per-probe must be a whole number"),
    (["--judge", "fake-judge", "--poll", "0"], "--poll 0"),
    (["--judge", "a\x00b"], "Name the judge under test"),
])
def test_bad_command_lines_fail_with_one_line_and_make_nothing(personas, fake, args, message):
    gullible_world(personas.project, fake)
    before = Dataset.all_objects.count()
    with pytest.raises(CommandError, match=message) as raised:
        _probe(*args)
    assert "\n" not in str(raised.value)
    assert Dataset.all_objects.count() == before and not ProbeRun.objects.exists()
