"""The probe gate's project settings: command, API and page, with bad values refused whole."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from apps.projects.models import Project
from apps.projects.services import token_create

pytestmark = pytest.mark.django_db


def _settings(*args):
    out = io.StringIO()
    call_command("project_settings", "--project", "acme", *args, stdout=out)
    return json.loads(out.getvalue())


def test_the_defaults_and_a_change_through_the_command(personas):
    shown = _settings()
    assert (shown["gate_probe_max_fpr"], shown["gate_probes_accepted"],
            shown["gate_probes_required"]) == (0.1, "", False)
    changed = _settings("--gate-probe-max-fpr", "0.2", "--gate-probes-accepted",
                        "markdown, padding_4x", "--gate-probes-required", "yes")
    assert changed["gate_probe_max_fpr"] == 0.2 and changed["gate_probes_required"] is True
    assert Project.objects.get(slug="acme").accepted_probes() == ["markdown", "padding_4x"]


@pytest.mark.parametrize("args,field", [
    (["--gate-probes-accepted", "markdown,bogus"], "Unknown probe(s): bogus"),
    (["--gate-probe-max-fpr", "1.5"], "gate_probe_max_fpr"),
    (["--gate-probe-max-fpr", "nan"], "gate_probe_max_fpr"),
    (["--gate-probes-accepted", "a\x00b"], "gate_probes_accepted"),
    (["--gate-probes-accepted", "x" * 600], "gate_probes_accepted"),
])
def test_a_bad_value_changes_nothing(personas, args, field):
    with pytest.raises(CommandError, match="nothing changed") as raised:
        _settings("--gate-probe-max-fpr", "0.3", *args)
    assert field in str(raised.value)
    assert Project.objects.get(slug="acme").gate_probe_max_fpr == 0.1


def test_the_api_and_the_page_carry_the_probe_settings(personas):
    _, raw = token_create(user=personas.owner, project=personas.project, name="t")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    response = Client().patch("/api/v1/projects/acme/settings",
                              json.dumps({"gate_probes_accepted": "markdown",
                                          "gate_probe_max_fpr": 0.05}),
                              content_type="application/json", **auth)
    assert response.status_code == 200, response.content
    assert response.json()["gate_probes_accepted"] == "markdown"
    bad = Client().patch("/api/v1/projects/acme/settings",
                         json.dumps({"gate_probes_accepted": "nope"}),
                         content_type="application/json", **auth)
    assert bad.status_code == 422 and "gate_probes_accepted" in bad.json()["errors"]
    page = personas.client("owner").get(reverse("project_settings", args=["acme"]))
    body = page.content.decode()
    assert "Gate: probes accepted as out of scope" in body and 'value="markdown"' in body
