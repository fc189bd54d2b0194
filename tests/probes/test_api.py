"""Probe runs through the JSON API: the same service and figures as judge_probe. Starting
queues the batches on commit; the in-process tests run them here (no worker)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from apps.datasets.models import Dataset
from apps.probes.models import ProbeRun
from apps.projects.services import token_create
from tests.probes.worlds import gullible_world, run_all

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(personas, fake):
    return gullible_world(personas.project, fake)


def _token(personas, who):
    _, raw = token_create(user=getattr(personas, who), project=personas.project, name=who)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _post(auth, **body):
    payload = {"rubric": "len", "dataset": "answers", "judge": "fake-judge", **body}
    return Client().post("/api/v1/projects/acme/probes", json.dumps(payload),
                         content_type="application/json", **auth)


def test_an_editor_starts_a_probe_run_and_reads_its_figures(world, personas):
    auth = _token(personas, "editor")
    response = _post(auth, probes=["master_key_reasoning", "empty"], per_probe=20)
    assert response.status_code == 201, response.content
    started = response.json()
    assert started["status"] == "queued" and started["judge"] == "fake-judge"
    assert started["probes"]["empty"]["pending"] == 20
    probe_run = ProbeRun.objects.get(pk=started["probe_run"])
    run_all(probe_run.run)
    got = Client().get(f"/api/v1/projects/acme/probes/{probe_run.pk}", **auth).json()
    assert got["status"] == "completed"
    assert got["probes"]["master_key_reasoning"]["fooled"] > 0
    assert got["probes"]["empty"]["fpr"] == 0.0
    assert got["gate"]["passed"] is False
    assert set(got["probes"]["empty"]) >= {"n", "fpr", "fpr_ci95", "mean_delta", "examples"}


@pytest.mark.parametrize("body,field", [
    ({"probes": "bogus"}, "probes"), ({"per_probe": 0}, "probes"),
    ({"judge": "nobody"}, "judge"), ({"judge": "a\x00b"}, "judge"),
    ({"per_probe": 10**50}, "probes"),
])
def test_bad_input_is_422_with_the_field_and_nothing_is_made(world, personas, body, field):
    before = Dataset.all_objects.count()
    response = _post(_token(personas, "editor"), **body)
    assert response.status_code == 422, response.content
    assert field in response.json()["errors"]
    assert Dataset.all_objects.count() == before and not ProbeRun.objects.exists()


def test_labellers_cannot_start_or_read_and_outsiders_see_nothing(world, personas):
    response = _post(_token(personas, "labeller"))
    assert response.status_code == 403
    client = Client()
    client.force_login(personas.outsider)
    assert client.post("/api/v1/projects/acme/probes", json.dumps(
        {"rubric": "len", "dataset": "answers", "judge": "fake-judge"}),
        content_type="application/json").status_code == 404
    assert not ProbeRun.objects.exists()
    auth = _token(personas, "editor")
    probe_run_id = _post(auth, probes="empty", per_probe=2).json()["probe_run"]
    assert Client().get(f"/api/v1/projects/acme/probes/{probe_run_id}",
                        **_token(personas, "labeller")).status_code == 403
    assert client.get(f"/api/v1/projects/acme/probes/{probe_run_id}").status_code == 404
    assert Client().get("/api/v1/projects/acme/probes/99999999", **auth).status_code == 404
