"""Headers that hold on every response, and CSRF on every write (STYLE.md 5 and 6)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from config.middleware import POLICY


def _csp(response) -> str:
    return response.headers.get("Content-Security-Policy", "")


@pytest.mark.django_db
@pytest.mark.parametrize("url", [
    "/accounts/login/", "/accounts/signup/", "/api/v1/openapi.json", "/api/v1/docs",
    "/api/v1/projects/acme/rubrics", "/static/css/app.css", "/static/vendor/htmx/htmx.min.js",
    "/static/ninja/swagger-ui-bundle.js", "/no-such-page/",
])
def test_every_response_carries_the_policy_and_nosniff(client, url):
    response = client.get(url)
    assert response.status_code in (200, 302, 401, 404), url
    assert _csp(response) == POLICY, url
    assert response.headers["X-Content-Type-Options"] == "nosniff", url


def test_signed_in_pages_carry_the_policy_and_refuse_framing(personas):
    client = personas.client("owner")
    for url in (reverse("project_list"), reverse("project_home", args=["acme"]),
                reverse("member_list", args=["acme"])):
        response = client.get(url)
        assert response.status_code == 200
        assert _csp(response) == POLICY
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_the_policy_allows_no_inline_script_no_foreign_origin_and_no_framing():
    directives = dict(d.split(" ", 1) for d in POLICY.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "unsafe" not in POLICY


def test_pages_have_no_inline_script_or_style_the_policy_would_block(personas):
    page = personas.client("owner").get(reverse("member_list", args=["acme"])).content.decode()
    for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S):
        assert "src=" in attrs and not body.strip()
    assert "<style" not in page and " style=" not in page
    assert not re.search(r"\son[a-z]+=", page)  # no onclick= and friends


def test_a_write_without_the_csrf_token_is_refused(personas):
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.outsider)
    response = client.post(reverse("project_create"), {"name": "Forged"})
    assert response.status_code == 403
    assert not personas.outsider.memberships.filter(project__name="Forged").exists()


def test_a_write_with_the_token_from_the_page_works(personas):
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.outsider)
    page = client.get(reverse("project_create")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(reverse("project_create"),
                           {"name": "Genuine", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert personas.outsider.memberships.filter(project__slug="genuine").exists()


def test_htmx_writes_send_the_token_from_the_body_header(personas):
    # base.html puts the token in hx-headers on <body>, so every htmx request carries it.
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.owner)
    page = client.get(reverse("member_list", args=["acme"])).content.decode()
    token = re.search(r"""hx-headers='\{"X-CSRFToken": "([^"]+)"\}'""", page).group(1)
    labeller = personas.labeller.memberships.get(project=personas.project)
    url = reverse("member_role", args=["acme", labeller.pk])
    assert client.post(url, {"role": "editor"}, HTTP_HX_REQUEST="true").status_code == 403
    response = client.post(url, {"role": "editor"}, HTTP_HX_REQUEST="true",
                           HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    labeller.refresh_from_db()
    assert labeller.role == "editor"


def test_sign_in_itself_needs_the_csrf_token(personas):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "owner", "password": "pw"})
    assert response.status_code == 403
