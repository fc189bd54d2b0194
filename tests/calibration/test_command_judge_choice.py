"""calibration_report without --judge: the only finished run is used and named; several runs
are refused with their names, so a script never reports on a judge it did not mean."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from apps.judging.models import JudgeRun, RunKind, RunStatus
from tests.labeling.helpers import make_session

pytestmark = pytest.mark.django_db


def _run(session, name: str, status=RunStatus.COMPLETED) -> JudgeRun:
    return JudgeRun.objects.create(project=session.project, rubric_version=session.rubric_version,
                                   dataset=session.dataset, name=name, kind=RunKind.IMPORTED,
                                   status=status)


def _report(session, *extra):
    out, err = io.StringIO(), io.StringIO()
    call_command("calibration_report", "--project", "acme", "--rubric", "helpful",
                 "--dataset", session.dataset.name, "--no-bias", *extra, stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


def test_without_judge_the_only_finished_run_is_used_and_named(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=2)
    _run(session, "still-running", status=RunStatus.RUNNING)
    only = _run(session, "judge-one")
    report, said = _report(session)
    assert report["judge"]["run"] == only.pk
    assert f"reporting on run {only.pk} (judge-one), the only finished run" in said


def test_without_judge_several_finished_runs_are_refused_with_their_names(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=2)
    first, second = _run(session, "judge-one"), _run(session, "judge-two")
    with pytest.raises(CommandError) as caught:
        _report(session)
    message = str(caught.value)
    assert "several judges ran helpful v1" in message and "--judge NAME_OR_RUN" in message
    assert f"judge-one (run {first.pk})" in message and f"judge-two (run {second.pk})" in message
    report, said = _report(session, "--judge", "judge-two")
    assert report["judge"]["run"] == second.pk and said == ""


def test_without_judge_and_no_finished_run_says_so(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=2)
    with pytest.raises(CommandError, match="no finished judge run of helpful v1"):
        _report(session)


def test_the_rounds_rule_is_a_flag_and_named_in_the_report(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=2)
    _run(session, "judge-one")
    report, _ = _report(session, "--rounds", "first")
    assert report["rounds"]["rule"] == "first"
    with pytest.raises(CommandError):
        _report(session, "--rounds", "all")
