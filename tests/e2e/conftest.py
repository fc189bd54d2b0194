"""A real browser (Debian's chromium, driven by Playwright) against the app on a live server.

Playwright's own browser download does not work on these machines; .ci/run installs the
`chromium` package and the tests launch it by path.
"""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    # Module scope, not session: Playwright's sync API keeps an event loop running in this
    # thread while it is open, and later tests that run their own loop (judge batches, reward
    # bundles) must not find it there.
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # synchronous and safe (Django cannot tell, so it must be told) — only while it is open.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"chromium not found at {CHROMIUM}: `apt-get install chromium` "
                           "(.ci/run does) or set CHROMIUM_PATH")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=LAUNCH_ARGS)
        yield browser
        browser.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class Watched:
    """A page that records dialogs, console errors and every request it makes."""

    def __init__(self, page, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", lambda m: self.console_errors.append(m.text)
                if m.type == "error" else None)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def wait_until(self, expression: str, arg=None, *, timeout: float = 30.0):
        """Poll a JS function until it returns true. Playwright's wait_for_function compiles
        its predicate with eval in the page, which our Content-Security-Policy forbids;
        page.evaluate goes through DevTools and is not affected."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.page.evaluate(expression, arg):
                return
            self.page.wait_for_timeout(100)
        raise AssertionError(f"timed out after {timeout}s waiting for {expression}")

    def goto(self, path: str):
        return self.page.goto(self.origin + path)

    def sign_in(self, username: str, password: str = "pw") -> None:
        self.goto("/accounts/login/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.page.click("main form button[type=submit]")
        self.page.wait_for_url("**/")


@pytest.fixture
def watched(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield Watched(page, live_server.url)
    context.close()
from tests.realparts import fake, fakellm, start_worker  # noqa: E402,F401 (pytest fixtures)
