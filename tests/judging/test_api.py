"""Judge runs through the JSON API: the same service as the start form and `judge_run`.

In-process, with no worker: starting plans the rows and queues messages on commit, which a
test transaction never reaches, so nothing is called. Outsiders, labellers and missing tokens
are swept for every endpoint in tests/security/test_csrf_and_api_sweep.py.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from apps.judging.models import ACTIVE_STATUSES, JudgeRun, Judgment, RunStatus
from apps.projects.services import token_create
from apps.rubrics.services import rubric_draft
from tests.judging.helpers import make_pointwise

FAKE_BASE = "http://127.0.0.1:9/v1"  # never called


@pytest.fixture
def world(personas):
    version, dataset = make_pointwise(personas.project, items=6)
    _, raw = token_create(user=personas.editor, project=personas.project, name="ci")
    return version, dataset, {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _start(auth, **body):
    payload = {"rubric": "quality", "dataset": "answers", "model": "openai/fake-judge",
               "api_base": FAKE_BASE, **body}
    return Client().post("/api/v1/projects/acme/runs", json.dumps(payload),
                         content_type="application/json", **auth)


def test_a_run_started_through_the_api_is_planned_and_reported(world):
    version, _, auth = world
    response = _start(auth, samples=2, name="ci judge")
    assert response.status_code == 201, response.content
    body = response.json()
    run = JudgeRun.objects.get(pk=body["run"])
    assert (run.name, run.rubric_version, run.samples) == ("ci judge", version, 2)
    assert body["planned_calls"] == 6 * 2 * 2 == Judgment.objects.filter(run=run).count()
    assert body | {"run": 0} == {"run": 0, "status": "queued", "done": 0, "failed": 0,
                                 "pending": 24, "failures": {}, "calls": 0, "asked": 0,
                                 "retried": 0, "cached": 0, "cost_usd": 0.0, "elapsed_s":
                                 body["elapsed_s"], "error": None, "planned_calls": 24}
    again = Client().get(f"/api/v1/projects/acme/runs/{run.pk}", **auth)
    assert again.status_code == 200 and again.json()["planned_calls"] == 24


def test_a_run_is_cancelled_and_resumed_through_the_api(world):
    *_, auth = world
    run_id = _start(auth).json()["run"]
    base = f"/api/v1/projects/acme/runs/{run_id}"
    cancelled = Client().post(f"{base}/cancel", **auth)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == RunStatus.CANCELLED
    # Cancelling twice is harmless; resuming a stopped run sets it going again.
    assert Client().post(f"{base}/cancel", **auth).json()["status"] == RunStatus.CANCELLED
    resumed = Client().post(f"{base}/resume", **auth)
    assert resumed.status_code == 200 and resumed.json()["status"] in ACTIVE_STATUSES
    refused = Client().post(f"{base}/resume", **auth)  # still going: nothing to resume
    assert refused.status_code == 422 and refused.json()["detail"]
    assert Client().post(f"{base}/explode", **auth).status_code == 404


@pytest.mark.parametrize("body,field", [
    ({"samples": 0}, "samples"),
    ({"concurrency": 5000}, "concurrency"),
    ({"subset": "everything"}, "subset"),
    ({"subset": "sample"}, "subset"),
    ({"version": 9}, "version"),
    ({"model": "openai/gpt-4.1-mini", "api_base": ""}, "model"),
])
def test_bad_settings_are_422_with_the_field_and_nothing_is_planned(world, body, field,
                                                                    monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    *_, auth = world
    response = _start(auth, **body)
    assert response.status_code == 422, response.content
    problems = response.json()
    assert field in problems["errors"] and problems["detail"]
    assert not JudgeRun.objects.exists() and not Judgment.objects.exists()


def test_an_unpublished_version_is_refused(personas, world):
    version, _, auth = world
    draft = rubric_draft(rubric=version.rubric)
    response = _start(auth, version=draft.number)
    assert response.status_code == 422
    assert "version" in response.json()["errors"]
    assert not JudgeRun.objects.exists()


def test_an_unknown_rubric_or_dataset_is_404(world):
    *_, auth = world
    assert _start(auth, rubric="nope").status_code == 404
    unknown = _start(auth, dataset="nope")
    assert unknown.status_code == 404
    assert unknown.json()["detail"].startswith("no dataset 'nope' in project 'acme'; datasets: ")
    assert Client().get("/api/v1/projects/acme/runs/999999", **auth).status_code == 404
    assert not JudgeRun.objects.exists()
