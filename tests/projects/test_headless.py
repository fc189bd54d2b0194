"""Every step headless (issue 13 §4): project_create, project_settings, member_add and
token_create on the command line, and the matching /api/v1/ endpoints for owner tokens. Each
command says one line on bad input and changes nothing."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from apps.projects.models import ApiToken, Membership, Project, Role
from apps.projects.services import token_authenticate, token_create

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refused(*args) -> str:
    with pytest.raises(CommandError) as caught:
        run(*args)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_project_create_makes_the_user_owner(personas):
    assert run("project_create", "--slug", "ci-proj", "--name", "CI", "--owner",
               "editor").strip() == "ci-proj"
    project = Project.objects.get(slug="ci-proj")
    assert Membership.objects.get(project=project).role == Role.OWNER


def test_project_create_refuses_bad_input(personas):
    assert "no active user 'nobody'" in refused("project_create", "--slug", "x", "--name", "X",
                                                "--owner", "nobody")
    assert "taken" in refused("project_create", "--slug", "acme", "--name", "A",
                              "--owner", "owner")
    assert "NUL" in refused("project_create", "--slug", "y", "--name", "a\x00b",
                            "--owner", "owner")
    assert not Project.objects.filter(slug__in=["x", "y"]).exists()


def test_project_settings_shows_and_changes(personas, settings):
    shown = json.loads(run("project_settings", "--project", "acme"))
    assert shown["gate_min_n"] == personas.project.gate_min_n
    changed = json.loads(run("project_settings", "--project", "acme", "--gate-min-kappa", "0.7",
                             "--max-queued-calls", "500", "--monthly-cost-limit-usd", "25"))
    assert (changed["gate_min_kappa"], changed["max_queued_calls"],
            changed["monthly_cost_limit_usd"]) == (0.7, 500, 25.0)
    settings.MAX_QUEUED_CALLS_LIMIT = 1000
    message = refused("project_settings", "--project", "acme", "--max-queued-calls",
                      "2000000000", "--gate-min-kappa", "-1")
    assert "MAX_QUEUED_CALLS_LIMIT" in message and "gate_min_kappa" in message
    assert "nothing changed" in message
    personas.project.refresh_from_db()
    assert (personas.project.max_queued_calls, personas.project.gate_min_kappa) == (500, 0.7)
    assert "no project with slug 'nope'" in refused("project_settings", "--project", "nope")


def test_member_add_and_token_create(personas):
    run("project_create", "--slug", "team", "--name", "Team", "--owner", "owner")
    assert run("member_add", "--project", "team", "--user", "labeller", "--role",
               "labeller").strip() == "labeller labeller team"
    assert "already a member" in refused("member_add", "--project", "team", "--user",
                                         "labeller", "--role", "editor")
    raw = run("token_create", "--project", "team", "--user", "labeller", "--name", "ci").strip()
    token = token_authenticate(raw)
    assert token.user == personas.labeller and token.project.slug == "team"
    assert "not a member" in refused("token_create", "--project", "team", "--user", "outsider",
                                     "--name", "ci")


# -- the API ------------------------------------------------------------------------------------

def api(method: str, path: str, token: str, body: dict | None = None):
    call = getattr(Client(), method)
    kwargs = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if body is not None:
        return call(path, json.dumps(body), content_type="application/json", **kwargs)
    return call(path, **kwargs)


def test_an_owner_token_creates_a_project_and_gets_a_token_for_it(personas):
    _, raw = token_create(user=personas.owner, project=personas.project, name="ci")
    response = api("post", "/api/v1/projects", raw, {"slug": "pipe", "name": "Pipeline"})
    assert response.status_code == 201
    body = response.json()
    assert body["slug"] == "pipe"
    new_token = body["token"]
    assert api("get", "/api/v1/projects/pipe/settings", new_token).status_code == 200
    assert ApiToken.objects.filter(project__slug="pipe", user=personas.owner).count() == 1


def test_an_editor_token_cannot_create_projects(personas):
    _, raw = token_create(user=personas.editor, project=personas.project, name="ci")
    assert api("post", "/api/v1/projects", raw, {"slug": "nope", "name": "N"}).status_code == 403
    assert not Project.objects.filter(slug="nope").exists()


def test_settings_through_the_api_keep_the_operators_ceilings(personas, settings):
    _, raw = token_create(user=personas.owner, project=personas.project, name="ci")
    settings.MAX_QUEUED_CALLS_LIMIT = 1000
    ok = api("patch", "/api/v1/projects/acme/settings", raw,
             {"gate_min_kappa_lower": 0.5, "max_queued_calls": 900})
    assert ok.status_code == 200 and ok.json()["max_queued_calls"] == 900
    bad = api("patch", "/api/v1/projects/acme/settings", raw,
              {"max_queued_calls": 2_000_000_000, "gate_min_kappa": -1, "name": "x"})
    assert bad.status_code == 422
    assert set(bad.json()["errors"]) == {"max_queued_calls", "gate_min_kappa"}
    personas.project.refresh_from_db()
    assert (personas.project.max_queued_calls, personas.project.name) == (900, "Acme")
    _, editor = token_create(user=personas.editor, project=personas.project, name="e")
    assert api("patch", "/api/v1/projects/acme/settings", editor,
               {"gate_min_n": 1}).status_code == 403
    assert api("get", "/api/v1/projects/acme/settings", editor).status_code == 200


def test_members_through_the_api(personas):
    _, raw = token_create(user=personas.owner, project=personas.project, name="ci")
    response = api("post", "/api/v1/projects/acme/members", raw,
                   {"user": "outsider", "role": "labeller"})
    assert response.status_code == 201 and response.json() == {"username": "outsider",
                                                               "role": "labeller"}
    again = api("post", "/api/v1/projects/acme/members", raw, {"user": "outsider",
                                                               "role": "editor"})
    assert again.status_code == 422 and "already a member" in again.json()["detail"]
    assert api("post", "/api/v1/projects/acme/members", raw,
               {"user": "nobody", "role": "editor"}).status_code == 422


@pytest.mark.parametrize("body", [{"name": "a\ud800b"}, {"description": "\ud800"},
                                  {"name": "a\x00b"}, {"gate_min_n": 2 ** 40},
                                  {"max_queued_calls": -5}, {"monthly_cost_limit_usd": 1e300},
                                  {"name": None}, {"gate_min_n": 0}, {"description": None},
                                  {"gate_min_kappa": None}, {"max_queued_calls": None}])
def test_odd_settings_through_the_api_are_field_errors(personas, body):
    _, raw = token_create(user=personas.owner, project=personas.project, name="ci")
    response = api("patch", "/api/v1/projects/acme/settings", raw, body)
    assert response.status_code == 422, response.content[:300]
    assert set(response.json()["errors"]) == set(body)


@pytest.mark.parametrize("body", [{"user": "\ud800", "role": "editor"},
                                  {"user": "x\x00", "role": "editor"},
                                  {"user": "outsider", "role": "\ud800"}])
def test_odd_members_through_the_api_are_field_errors(personas, body):
    _, raw = token_create(user=personas.owner, project=personas.project, name="ci")
    assert api("post", "/api/v1/projects/acme/members", raw, body).status_code == 422


def test_an_odd_project_through_the_api_is_a_field_error(personas):
    _, raw = token_create(user=personas.owner, project=personas.project, name="ci")
    for body in ({"slug": "x", "name": "\ud800"}, {"slug": "y", "name": "n",
                                                   "description": "\x00"}):
        assert api("post", "/api/v1/projects", raw, body).status_code == 422
