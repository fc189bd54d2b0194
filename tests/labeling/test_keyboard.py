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


def _focused_criterion(page) -> str | None:
    return page.evaluate("""() => {
        const el = document.activeElement;
        const box = el && el.closest('fieldset[data-criterion]');
        return box ? box.dataset.criterion : null; }""")


def test_a_full_item_with_a_comment_by_keys_only(personas, live_server, page):
    """Tab walks criteria, C opens the comment, Esc goes back to the criterion it came from,
    Ctrl+Enter submits and the next item starts at its first criterion, out of the comment."""
    session = make_session(personas.project, assignees=[personas.labeller], items=3)
    _sign_in(page, live_server.url, "labeller")
    page.goto(live_server.url + reverse("label_screen", kwargs={"slug": "acme",
                                                                  "session_id": session.pk}))
    page.wait_for_selector("fieldset.label-criterion.current")
    keys = page.text_content("#keys-help")
    assert "Esc" in keys and "Tab" in keys and "Ctrl" in keys
    assert _focused_criterion(page) == "correct"
    page.keyboard.press("Tab")
    assert _focused_criterion(page) == "safe"  # the next criterion, not the next radio
    page.keyboard.press("Shift+Tab")
    assert _focused_criterion(page) == "correct"
    page.keyboard.press("3")
    assert _focused_criterion(page) == "safe"
    page.keyboard.press("1")

    page.keyboard.press("c")
    assert page.evaluate("document.activeElement.id") == "comment"
    page.keyboard.type("too short 42")
    page.keyboard.press("Escape")  # back to the criterion it came from
    assert _focused_criterion(page) == "safe"
    assert page.input_value("#comment") == "too short 42"
    page.keyboard.press("c")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("text=Question 1?")
    page.wait_for_selector("fieldset.label-criterion.current")
    stored = {(k, v, c) for k, v, c in HumanLabel.objects.filter(session=session).values_list(
        "criterion_key", "value", "comment")}
    assert stored == {("correct", "3", "too short 42"), ("safe", "1", "too short 42")}
    # The next item: focus on its first criterion, not in its (empty) comment box.
    assert page.evaluate("document.activeElement.id") != "comment"
    assert _focused_criterion(page) == "correct"
    page.keyboard.press("2")
    page.keyboard.press("0")
    assert page.input_value("#comment") == ""  # the digits went to the criteria
    assert page.is_checked("input[name=c_correct][value='2']")
    assert page.is_checked("input[name=c_safe][value='0']")
    assert page.get_attribute(".label-progress progress", "value") == "1"
    assert page.errors == []


def test_item_and_rubric_side_by_side_on_a_wide_screen(personas, live_server, page):
    session = make_session(personas.project, assignees=[personas.labeller], items=1)
    from apps.datasets.models import Item

    Item.objects.filter(dataset=session.dataset).update(response="A long answer.\n" * 80)
    _sign_in(page, live_server.url, "labeller")
    screen = live_server.url + reverse("label_screen", kwargs={"slug": "acme",
                                                               "session_id": session.pk})
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(screen)
    item = page.locator(".label-left").bounding_box()
    criteria = page.locator("fieldset[data-criterion]").last.bounding_box()
    submit = page.locator("#label-form button[type=submit]").bounding_box()
    assert criteria["x"] >= item["x"] + item["width"]  # beside, not below
    assert criteria["y"] + criteria["height"] <= 900 and submit["y"] + submit["height"] <= 900
    page.set_viewport_size({"width": 700, "height": 900})
    item = page.locator(".label-left").bounding_box()
    criteria = page.locator("fieldset[data-criterion]").first.bounding_box()
    assert criteria["y"] >= item["y"] + item["height"]  # a narrow screen stacks them
    assert page.errors == []


def test_adjudication_saves_in_place_and_moves_on(personas, live_server, page):
    from apps.labeling.models import GoldLabel, LabelSource

    session = make_session(personas.project, assignees=[personas.labeller], items=30)
    items = list(session.pool.order_by("position").values_list("item_id", flat=True))
    for annotator, shift in (("ann", 0), ("bob", 1)):
        HumanLabel.objects.bulk_create(
            HumanLabel(item_id=pk, criterion_key="correct", scale_signature="ordinal:1,2,3",
                       annotator=annotator, value=str(1 + (i + shift) % 3),
                       source=LabelSource.SCREEN, session=session)
            for i, pk in enumerate(items))
    _sign_in(page, live_server.url, "owner")
    page.goto(live_server.url + reverse("adjudicate", kwargs={"slug": "acme",
                                                              "session_id": session.pk}))
    loads = []
    page.on("framenavigated", lambda frame: loads.append(frame.url)
            if frame == page.main_frame else None)
    row = page.locator("[data-disagreement]").nth(5)
    row.scroll_into_view_if_needed()
    before = page.evaluate("window.scrollY")
    assert before > 0
    row.locator("select[name=value]").select_option("2")
    row.locator("button[type=submit]").click()
    page.wait_for_selector(f"#d-{items[5]}-correct.saved")
    assert loads == []  # swapped by htmx, no page load
    assert abs(page.evaluate("window.scrollY") - before) < 900  # the place is kept
    assert "Saved. Gold: 2 — Partly" in page.inner_text(f"#d-{items[5]}-correct")
    # Focus moved on to the next disagreement's gold value, and the queue grew by one.
    assert page.evaluate("document.activeElement.closest('[data-disagreement]').id") == (
        f"d-{items[6]}-correct")
    assert page.locator("[data-disagreement]").count() == 26
    assert GoldLabel.objects.get(item_id=items[5]).value == "2"
    assert page.errors == []
