"""An invitation in a real browser: with sign-up closed, the owner invites an e-mail from the
Members page, reads the link off the page, and the new person opens it in their own browser,
sets a password and lands in the project, where their labelling work is listed."""

from __future__ import annotations

import pytest

from apps.projects.models import Membership
from tests.labeling.helpers import make_session

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct horse battery staple"


def test_an_invited_labeller_joins_and_finds_their_work(personas, watched, browser):
    page = watched.page
    watched.sign_in("owner")
    watched.goto("/p/acme/members/")
    page.fill("#invite input[name=email]", "kim@example.org")
    page.select_option("#invite select[name=role]", "labeller")
    page.click("#invite button[type=submit]")
    link = page.locator("input[aria-label='Invitation link']").input_value()
    assert "/accounts/invitation/" in link
    assert page.locator("text=kim@example.org").count() >= 1

    # Kim's own browser: no sign-up page, only the link.
    context = browser.new_context()
    kim = context.new_page()
    closed = kim.goto(watched.origin + "/accounts/signup/")
    assert closed.status == 404
    kim.goto(link)
    kim.fill("input[name=username]", "kim")
    kim.fill("input[name=password1]", PASSWORD)
    kim.fill("input[name=password2]", PASSWORD)
    kim.click("main form button[type=submit]")
    kim.wait_for_selector("text=Welcome to Acme")
    assert kim.url.endswith("/p/acme/")
    member = Membership.objects.get(project=personas.project, user__username="kim")
    assert member.role == "labeller"

    # Work assigned later is where Kim lands after signing in again.
    session = make_session(personas.project, assignees=[member.user], items=4)
    context.clear_cookies()
    kim.goto(watched.origin + "/accounts/login/")
    kim.fill("input[name=username]", "kim")
    kim.fill("input[name=password]", PASSWORD)
    kim.click("main form button[type=submit]")
    kim.wait_for_selector("#labelling-work")
    assert kim.locator(f"#labelling-work a:has-text('{session.name}')").count() == 1
    kim.goto(link)  # the link worked once
    assert "not valid" in kim.content()
    context.close()
    assert watched.console_errors == []
