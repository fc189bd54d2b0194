"""The whole loop in a real browser, as a new user: sign up, create a project, write a rubric
with two anchored criteria, publish it, upload a dataset, label 20 items with the keyboard only,
run a judge on a real Celery worker against the fake provider and watch the progress bar reach
the end, read the calibration, export the bundle and open the zip. Then the demo: gpt-3.5-turbo
against the human majority beside the humans' own agreement, and the gate refusing it.

Assertions are about what a person sees. Screenshots of the main pages go to docs/screenshots/
with RUBRICLAB_SCREENSHOTS=1 (`make screenshots`; the README shows some of them).
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The README's screenshots are refreshed on purpose (`make screenshots`), not by every test run,
# which would leave the working tree changed; otherwise they go to a scratch folder.
SHOTS = (Path(__file__).resolve().parents[2] / "docs" / "screenshots"
         if os.environ.get("RUBRICLAB_SCREENSHOTS") == "1"
         else Path(tempfile.gettempdir()) / "rubriclab-screenshots")
N_ITEMS = 60
LEVEL_WORDS = {1: "Wrong", 2: "Partly right", 3: "Right"}


def _level(n: int) -> int:
    return n % 3 + 1


def _dataset_file(tmp_path: Path) -> Path:
    """60 answers; each tells the fake judge what to answer, and two annotators agree with it."""
    rows = []
    for n in range(N_ITEMS):
        level = _level(n)
        rows.append({
            "id": f"q{n:02d}",
            "prompt": f"How long should I boil egg number {n}?",
            "response": f"About {n % 12 + 3} minutes, then cool it. FAKE_VERDICT={level}",
            "labels": [{"annotator": name, "criterion": key, "value": level}
                       for name in ("ann1", "ann2") for key in ("correct", "clear")],
        })
    path = tmp_path / "answers.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def _add_criterion(watched, key: str, name: str) -> None:
    page = watched.page
    page.click("text=Add criterion")
    page.wait_for_selector("#criterion-editor form")
    editor = page.locator("#criterion-editor")
    editor.locator("input[name=key]").fill(key)
    editor.locator("input[name=name]").fill(name)
    levels = editor.locator("input[name=n_levels]")
    levels.fill("3")
    levels.dispatch_event("change")  # the level rows are redrawn for three levels
    watched.wait_until("() => document.querySelectorAll("
                       "'#criterion-editor textarea[name$=anchor]').length === 3")
    for value, word in LEVEL_WORDS.items():
        editor.locator(f"input[name='level-{value - 1}-label']").fill(word)
        editor.locator(f"textarea[name='level-{value - 1}-anchor']").fill(
            f"{name}: {word.lower()} for the question asked.")
    editor.locator("button:has-text('Save criterion')").click()
    page.wait_for_selector(f"#criteria li.criterion:has-text('{key}')")


def test_from_nothing_to_an_exported_calibrated_judge(watched, fake, start_worker, tmp_path,
                                                      settings):
    settings.ALLOW_SIGNUP = True  # an operator who opened sign-up (closed by default)
    settings.PROJECT_CREATORS = "anyone"  # and project creation (owners only by default)
    page = watched.page
    worker = start_worker()

    # -- sign up and create a project --------------------------------------------------------
    watched.goto("/accounts/signup/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=email]", "alice@example.org")
    page.fill("input[name=password1]", "correct horse battery staple")
    page.fill("input[name=password2]", "correct horse battery staple")
    page.click("main form button[type=submit]")
    page.wait_for_selector("text=New project")
    page.fill("input[name=name]", "Cooking judge")
    page.click("main form button[type=submit]")
    page.wait_for_selector("h1:has-text('Cooking judge')")

    # -- a rubric with two criteria, every level anchored, published ----------------------------
    page.click("text=New rubric")
    page.fill("input[name=name]", "Egg answers")
    page.fill("textarea[name=description]", "Answer a home cook's question about eggs.")
    page.click("main form button[type=submit]")
    page.wait_for_selector("h1:has-text('Egg answers')")
    _add_criterion(watched, "correct", "Correct")
    _add_criterion(watched, "clear", "Clear")
    assert page.locator("#criteria li.criterion").count() == 2
    page.fill("#publish textarea[name=note]", "First version: two criteria, three levels each.")
    page.click("#publish button:has-text('Publish')")
    page.wait_for_selector("text=Published version 1")
    _shot(page, "rubric")

    # -- upload a dataset ------------------------------------------------------------------------
    project_url = "/p/cooking-judge"  # the slug made from the project's name
    watched.goto(project_url + "/datasets/upload/")
    page.fill("input[name=name]", "Egg answers v1")
    page.set_input_files("input[name=file]", str(_dataset_file(tmp_path)))
    page.click("main form button[type=submit]")
    page.wait_for_selector(f"text=Imported {N_ITEMS} items")
    assert "240 human labels" in page.inner_text("#messages")

    # -- a labelling session; 20 items labelled with the keyboard only ------------------------
    watched.goto(project_url + "/labelling/new/")
    page.fill("input[name=name]", "First pass")
    page.check("input[name=assignees]")  # alice is the only member
    page.click("main form button[type=submit]")
    page.wait_for_selector("text=First pass")
    page.click("main a[role=button]:text-is('Label')")
    page.wait_for_selector("[data-label-form]")
    for done in range(20):
        # labeling.js marks the current criterion once it has the keyboard
        watched.wait_until("() => !!document.querySelector('fieldset[data-criterion].current')")
        text = page.inner_text("#panel")
        level = int(re.search(r"FAKE_VERDICT=(\d)", text).group(1))
        item_id = page.locator("[data-label-form] input[name=assignment]").get_attribute("value")
        page.keyboard.press(str(level))  # first criterion, then focus moves to the second
        page.keyboard.press(str(level))
        if done == 0:
            _shot(page, "labelling")
        page.keyboard.press("Enter")
        watched.wait_until(
            "id => { const i = document.querySelector('[data-label-form] "
            "input[name=assignment]'); return !i || i.value !== id; }", item_id)
    assert "20 done" in page.inner_text("#panel")

    # -- a judge run on the worker; the progress bar reaches the end ---------------------------
    watched.goto(project_url + "/runs/new/")
    page.fill("input[name=model]", "openai/fake-judge")
    page.fill("input[name=api_base]", fake.url)
    page.fill("input[name=concurrency]", "8")
    page.click("main form button:has-text('Start run')")
    page.wait_for_selector("progress")
    watched.wait_until(
        "() => { const p = document.querySelector('progress'); "
        "return !!p && p.max > 0 && p.value === p.max; }", timeout=120)
    page.wait_for_selector(".status-completed")
    assert f"{2 * N_ITEMS} of {2 * N_ITEMS} calls" in page.inner_text("#progress")
    _shot(page, "judge-run")

    # -- the calibration: kappa, its interval, the confusion matrix, the gate -------------------
    watched.goto(project_url + "/calibration/")
    # The index: every judge of the rubric against every criterion; a judge opens its report.
    assert "✓ passes" in page.inner_text("#judge-matrix")
    page.click("#judge-matrix tbody th a")
    page.wait_for_selector("text=Passes the gate")
    card = page.locator("#criterion-correct")
    text = card.inner_text()
    assert "kappa (quadratic weights) = 1.00" in text
    assert "95% interval" in text
    cells = card.locator("table.heatmap tbody tr")
    assert cells.count() == 3
    assert card.locator("table.heatmap td.diagonal").count() == 3
    _shot(page, "calibration")

    # -- export the bundle and open the zip ---------------------------------------------------
    watched.goto(project_url + "/exports/new/")
    page.click("main form button:has-text('Export')")
    page.wait_for_selector("text=Download")
    with page.expect_download() as download_info:
        page.click("a:has-text('Download')")
    data = Path(download_info.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = {name.split("/", 1)[1] for name in archive.namelist()}
        folder = archive.namelist()[0].split("/", 1)[0]
        calibration = json.loads(archive.read(f"{folder}/calibration.json"))
        reward = archive.read(f"{folder}/reward.py").decode()
    assert names == {"judge.json", "calibration.json", "rubric.yaml", "reward.py", "README.md"}
    assert calibration["status"] == "CALIBRATED"
    assert "def reward_func" in reward and "def compute_score" in reward

    assert watched.dialogs == []
    assert worker.process.poll() is None


def test_the_demo_shows_gpt35_against_the_humans_and_the_gate_refusing_it(watched):
    call_command("load_demo", stdout=io.StringIO())
    page = watched.page
    watched.sign_in("demo", "demo")
    watched.goto("/p/demo/")
    _shot(page, "demo-project")
    watched.goto("/p/demo/calibration/pandalm-preference/")
    gpt = page.locator("select[name=judge] option", has_text="gpt-3.5-turbo").first
    page.select_option("select[name=judge]", gpt.get_attribute("value"))
    page.select_option("select[name=part]", "all")  # the published figures: all 999 items
    page.click("form.selectors button:has-text('Show')")
    page.wait_for_selector("text=Gate not decided on these items")
    card = page.locator("#criterion-overall").inner_text()
    assert re.search(r"kappa = 0\.50", card)  # gpt-3.5-turbo against the human majority
    assert "alpha = 0.86" in card  # the humans' own agreement, beside it
    page.select_option("select[name=part]", "test")  # the gate's view: held-out items only
    page.click("form.selectors button:has-text('Show')")
    page.wait_for_selector("text=Does not pass the gate")
    assert "Held-out test items only" in page.inner_text("#scope")
    assert re.search(r"kappa 0\.\d+ is below 0\.6", page.inner_text(".gate"))
    _shot(page, "demo-calibration")
    watched.goto("/p/demo/exports/new/")
    gpt = page.locator("select[name=run] option", has_text="gpt-3.5-turbo").first
    page.select_option("select[name=run]", gpt.get_attribute("value"))
    page.click("main form button:has-text('Export')")
    page.wait_for_selector("text=Refused: this judge does not pass the gate")
