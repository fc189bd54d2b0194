"""Who may create projects (PROJECT_CREATORS): a project is a budget on the server's provider
keys, so an invited labeller or editor cannot open one of their own by default ("owners")."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from apps.projects.models import Project
from apps.projects.services import token_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _create(client, name):
    return client.post(reverse("project_create"), {"name": name})


@pytest.mark.parametrize("role", ["editor", "labeller"])
def test_a_member_who_owns_nothing_cannot_create_a_project_by_default(personas, role):
    client = personas.client(role)
    assert client.get(reverse("project_create")).status_code == 403
    response = _create(client, "My own budget")
    assert response.status_code == 403
    assert not Project.objects.filter(slug="my-own-budget").exists()
    assert reverse("project_create") not in client.get(reverse("project_list")).content.decode()


def test_an_owner_and_a_staff_user_can(personas, client):
    assert _create(personas.client("owner"), "Second").status_code == 302
    staff = UserFactory(username="admin", is_staff=True)
    client.force_login(staff)
    page = client.get(reverse("project_list")).content.decode()
    assert reverse("project_create") in page
    assert _create(client, "Staff made").status_code == 302
    assert Project.objects.filter(slug__in=["second", "staff-made"]).count() == 2


def test_a_user_without_any_project_is_told_whom_to_ask(client):
    client.force_login(UserFactory(username="newcomer"))
    page = client.get(reverse("project_list")).content.decode()
    assert "ask one to invite you" in page
    assert reverse("project_create") not in page


def test_anyone_and_staff_settings(personas, settings):
    settings.PROJECT_CREATORS = "anyone"
    assert _create(personas.client("labeller"), "Open").status_code == 302
    settings.PROJECT_CREATORS = "staff"
    assert _create(personas.client("owner"), "Closed").status_code == 403
    assert not Project.objects.filter(slug="closed").exists()


def test_the_api_follows_the_same_rule(personas, settings):
    settings.PROJECT_CREATORS = "staff"
    _, raw = token_create(user=personas.owner, project=personas.project, name="ci")
    response = Client().post("/api/v1/projects", json.dumps({"slug": "pipe", "name": "P"}),
                             content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 403
    assert "PROJECT_CREATORS" in response.json()["detail"]
    assert not Project.objects.filter(slug="pipe").exists()


def test_a_bad_value_fails_start_up_naming_the_variable():
    import subprocess
    import sys

    from tests.realparts import process_env

    env = process_env(extra_env={"PROJECT_CREATORS": "everybody"})
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "PROJECT_CREATORS='everybody'" in result.stderr
