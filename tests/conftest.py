from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from django.test import Client

from apps.projects.models import Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@dataclass
class Personas:
    """One project and one user per role, plus an outsider who belongs to another project."""

    project: object
    owner: object
    editor: object
    labeller: object
    outsider: object
    other_project: object

    def client(self, who: str | None) -> Client:
        client = Client()
        if who is not None:
            client.force_login(getattr(self, who))
        return client


@pytest.fixture
def personas(db) -> Personas:
    project = ProjectFactory(slug="acme", name="Acme")
    other = ProjectFactory(slug="other", name="Other")
    people = {}
    for role in (Role.OWNER, Role.EDITOR, Role.LABELLER):
        user = UserFactory(username=role.value)
        MembershipFactory(project=project, user=user, role=role)
        people[role.value] = user
    outsider = UserFactory(username="outsider")
    MembershipFactory(project=other, user=outsider, role=Role.OWNER)
    return Personas(project=project, owner=people["owner"], editor=people["editor"],
                    labeller=people["labeller"], outsider=outsider, other_project=other)


@pytest.fixture
def owner_client(personas) -> Client:
    return personas.client("owner")


@pytest.fixture
def editor_client(personas) -> Client:
    return personas.client("editor")


@pytest.fixture(scope="session", autouse=True)
def _remove_test_broker_folder():
    """The filesystem broker folder of this test run (config/settings/test.py) goes at the end."""
    yield
    import shutil

    from django.conf import settings

    folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in")
    if folder and "test-broker-" in folder:
        shutil.rmtree(os.path.dirname(folder), ignore_errors=True)


@pytest.fixture(scope="module")
def demo_loaded(django_db_setup, django_db_blocker):
    """The demo project from the bundled real data, loaded once for the module that asks.

    load_demo takes seconds, so it is committed outside the per-test transactions and deleted
    afterwards; tests only read it (or change it inside their own transaction, rolled back).
    """
    import io

    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from apps.intake import demo
    from apps.projects.models import Project

    with django_db_blocker.unblock():
        from django.db import connection

        # Without a db-marked test in the module pytest-django may not have switched to the
        # test database yet: never load (and later delete) the demo in a real database.
        name = str(connection.settings_dict["NAME"])
        assert "test" in name.rsplit("/", 1)[-1], f"refusing to load the demo into {name}"
        out = io.StringIO()
        call_command("load_demo", stdout=out)
        yield out.getvalue()
        Project.objects.filter(slug=demo.PROJECT_SLUG).delete()
        get_user_model().objects.filter(username="demo").delete()


@pytest.fixture(scope="session", autouse=True)
def _close_the_judging_loop():
    """Batches run in this process keep one event loop (apps/judging/executor.py); close it at
    the end, as a worker process does, so litellm's background task ends with it."""
    yield
    from apps.judging.executor import close_process_loop

    close_process_loop()
