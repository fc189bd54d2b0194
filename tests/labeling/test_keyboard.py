"""The labelling screen in a real browser (Debian's chromium through Playwright, as in
tests/e2e): keyboard only, the next item arrives by htmx without a page load, and the page runs
under the Content-Security-Policy without a console error."""

from __future__ import annotations

import os
import shutil

import pytest
from django.urls import reverse

from apps.labeling.models import AssignmentStatus, HumanLabel
from tests.labeling.helpers import make_session

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def page(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (apt-get install chromium)")
    # Playwright's sync API keeps an event loop in this thread; the test's ORM calls are
    # synchronous and safe. Told for this test only, not for the whole run.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.errors = []
        page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        yield page
        browser.close()
        # ORM calls made while Playwright's loop runs get their own connection (Django keeps
        # connections per context): close it here, or it outlives the test database.
        from django.db import connections

        connections.close_all()


def _sign_in(page, origin: str, username: str) -> None:
    page.goto(origin + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw")
    page.click("form button[type=submit]")
    page.wait_for_url("**/")


def test_labelling_by_keyboard_alone(personas, live_server, page):
    session = make_session(personas.project, assignees=[personas.labeller], items=3)
    _sign_in(page, live_server.url, "labeller")
    page.goto(live_server.url + reverse("label_screen", kwargs={"slug": "acme",
                                                                  "session_id": session.pk}))
    page.wait_for_selector("fieldset.label-criterion.current")
    loads = []
    page.on("framenavigated", lambda frame: loads.append(frame.url) if frame == page.main_frame
            else None)

    page.keyboard.press("3")  # Correct = 3, then focus moves to Safe
    page.keyboard.press("1")  # Safe = 1
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Question 1?")
    assert loads == [], loads  # the next item came by htmx, not a page load
    stored = dict(HumanLabel.objects.filter(session=session).values_list("criterion_key",
                                                                        "value"))
    assert stored == {"correct": "3", "safe": "1"}
    assert "Saved: Correct = 3" in page.inner_text("#messages")

    page.keyboard.press("?")
    assert page.locator("#keys-help").get_attribute("open") is not None
    page.keyboard.press("?")

    page.keyboard.press("u")  # undo: item 0 comes back, its labels are gone
    page.wait_for_selector("text=Question 0?")
    assert not HumanLabel.objects.filter(session=session).exists()

    page.keyboard.press("2")
    page.keyboard.press("0")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Question 1?")

    page.keyboard.press("s")  # skip asks why
    page.wait_for_selector("#skip-box[open]")
    page.wait_for_selector("#skip-box input[name=reason]:focus")
    page.keyboard.type("cannot judge")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Question 2?")
    skipped = session.assignments.get(status=AssignmentStatus.SKIPPED)
    assert skipped.skip_reason == "cannot judge"

    page.keyboard.press("Enter")  # nothing chosen: the errors name the criteria
    page.wait_for_selector("text=Correct: choose a level")
    assert loads == [], loads
    # The 422 of the refused form is logged by the browser as a failed load; nothing else.
    assert [e for e in page.errors if "status of 422" not in e] == []
