"""Wherever a run is offered as evidence, its failed-call share is shown beside it, and the gate
refuses a run that failed or has more than JUDGE_RUN_MAX_FAILED_SHARE of its calls failed
(issue 11 section 3)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.urls import reverse

from apps.calibration.report import calibration_report
from apps.exports.services import judge_export
from apps.judging.models import JudgeRun, Judgment, JudgmentStatus, RunKind, RunStatus
from tests.judging.helpers import make_pointwise


def live_run(project, *, status: str, failed: int, planned: int = 20) -> JudgeRun:
    version, dataset = make_pointwise(project, items=planned // 2)
    run = JudgeRun.objects.create(project=project, rubric_version=version, dataset=dataset,
                                  name="judge-a", kind=RunKind.LIVE, status=status,
                                  model="openai/fake-judge", planned_calls=planned)
    rows = [Judgment(run=run, item=item, criterion_key=key, status=JudgmentStatus.DONE,
                     value="3")
            for item in dataset.items.order_by("position") for key in ("correct", "clear")]
    for row in rows[:failed]:
        row.status, row.value, row.error_kind = JudgmentStatus.FAILED, "", "content_policy"
    Judgment.objects.bulk_create(rows)
    return run


def test_the_export_form_shows_the_failed_share_beside_each_judge(personas):
    run = live_run(personas.project, status=RunStatus.COMPLETED_WITH_FAILURES, failed=2)
    html = personas.client("owner").get(reverse("export_create", args=["acme"])).content.decode()
    assert f"judge-a (#{run.pk})" in html and "2 failed calls (10.0%)" in html


def test_the_calibration_page_shows_the_state_and_the_failed_share(personas):
    run = live_run(personas.project, status=RunStatus.COMPLETED_WITH_FAILURES, failed=2)
    url = reverse("calibration_dashboard", args=["acme", "quality"])
    response = personas.client("editor").get(url, {"dataset": run.dataset_id, "judge": run.pk})
    html = response.content.decode()
    assert response.status_code == 200
    assert "completed with failures, 2 failed calls (10.0%)" in html
    assert "2 of 20 calls failed or invalid (10.0%)" in html


def test_the_report_names_the_failed_calls_and_the_gate_refuses_over_the_share(personas):
    run = live_run(personas.project, status=RunStatus.COMPLETED_WITH_FAILURES, failed=2)
    report = calibration_report(version=run.rubric_version, dataset=run.dataset, run=run,
                                with_bias=False)
    assert (report["judge"]["failed_calls"], report["judge"]["failure_kinds"]) == (
        2, {"content_policy": 2})
    assert not any("failed or were invalid" in r for r in report["gate"]["reasons"])
    with override_settings(JUDGE_RUN_MAX_FAILED_SHARE=0.05):
        report = calibration_report(version=run.rubric_version, dataset=run.dataset, run=run,
                                    with_bias=False)
    assert ("10% of the run's calls failed or were invalid, more than the 5% allowed "
            "(JUDGE_RUN_MAX_FAILED_SHARE)") in report["gate"]["reasons"]
    assert not report["gate"]["passed"]


def test_a_failed_run_is_neither_offered_nor_exported(personas):
    run = live_run(personas.project, status=RunStatus.FAILED, failed=20)
    html = personas.client("owner").get(reverse("export_create", args=["acme"])).content.decode()
    assert f"(#{run.pk})" not in html
    with pytest.raises(ValidationError) as caught:
        judge_export(run=run, fmt="bundle", force=True)
    assert "is failed; export a finished run" in str(caught.value)
    report = calibration_report(version=run.rubric_version, dataset=run.dataset, run=run,
                                with_bias=False)
    assert f"run #{run.pk} failed: its verdicts are not evidence" in report["gate"]["reasons"]


def test_the_run_page_says_completed_with_failures_with_the_count_and_kinds(personas):
    run = live_run(personas.project, status=RunStatus.COMPLETED_WITH_FAILURES, failed=2)
    html = personas.client("editor").get(
        reverse("run_detail", args=["acme", run.pk])).content.decode()
    assert 'class="status status-completed_with_failures">Completed with failures<' in html
    assert "2 of 20 calls failed or gave invalid answers (10.0%)" in html
    assert "<code>content_policy</code>" in html
    listing = personas.client("editor").get(reverse("run_list", args=["acme"])).content.decode()
    assert "status-completed_with_failures" in listing
