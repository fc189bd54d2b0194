"""The alignment loop in a real browser on real parts: a judge ran on a Celery worker against the
fake model in its scripted mode (it applies the word threshold the anchors state); in the
workbench a person reads where it parts from the people, edits the anchor with the keyboard,
re-scores the draft on development items, watches the progress and reads before / after."""

from __future__ import annotations

import pytest

from apps.calibration.models import Rescore
from apps.judging.models import JudgeRun, RunStatus
from apps.judging.planning import RunSettings, judge_run_start
from tests.calibration.worlds import length_world
from tests.e2e.axe import serious_violations
from tests.e2e.test_journey import _shot
from tests.judging.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_edit_rescore_and_read_before_and_after(watched, fake, start_worker, personas,
                                                monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    worker = start_worker()
    fake.control(script="length")
    world = length_world(personas.project, n=80)
    base = judge_run_start(project=world.project, version=world.version, dataset=world.dataset,
                           run_settings=RunSettings(model="openai/fake-judge", api_base=fake.url,
                                                    concurrency=20, timeout_s=10.0))
    wait_for(lambda: JudgeRun.objects.get(pk=base.pk).status == RunStatus.COMPLETED,
             timeout=120, what="the base judge run", worker=worker)

    page = watched.page
    watched.sign_in("editor")
    watched.goto(f"/p/{world.project.slug}/calibration/len/workbench/")
    page.wait_for_selector("#disagreements article.disagreement-card")
    heading = page.inner_text("#disagreements-title")
    assert "on development items" in heading
    assert serious_violations(page) == []

    # Edit the anchor with the keyboard only: focus the field, select all, type, submit.
    anchor = page.locator("textarea[name='c-long-anchor-1']")
    anchor.focus()
    page.keyboard.press("Control+A")
    page.keyboard.type("The answer has at least 40 words.")
    page.keyboard.press("Tab")
    page.click("button:has-text('Save the draft')")
    page.wait_for_selector("text=Draft saved")

    page.click("button:has-text('Re-score the draft')")
    page.wait_for_selector("#rescore progress")
    watched.wait_until(
        "() => !!document.querySelector('#rescore table.before-after')", timeout=120)
    rescore = Rescore.objects.get()
    assert rescore.run.status == RunStatus.COMPLETED
    text = page.inner_text("#rescore")
    assert "Before and after, on the same development items" in text
    row = page.locator("#rescore table.before-after tbody tr").first.inner_text()
    assert "Long enough" in row and "+" in row  # kappa rose
    page.click("#rescore details.flips summary")
    assert "Now agree with the people" in page.inner_text("#rescore details.flips")
    _shot(page, "workbench")
    assert watched.dialogs == [] and worker.process.poll() is None
