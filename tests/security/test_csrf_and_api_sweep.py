"""CSRF on every write, and the API walked as outsider and labeller (issue: security sweep)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from apps.projects.models import Role
from apps.projects.services import token_create
from tests.factories import MembershipFactory, UserFactory
from tests.test_url_sweep import PATTERNS, _snapshot, _url
from tests.world import build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(personas):
    return build_world(personas.project, owner=personas.owner, member=personas.editor)


@pytest.mark.parametrize("name,route", PATTERNS)
def test_every_write_without_a_csrf_token_is_refused(personas, world, name, route):
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.owner)
    before = _snapshot(world.project)
    response = client.post(_url(name, route, world.kwargs()), {"note": "x", "name": "x",
                                                                "text": "x", "role": "owner"})
    assert response.status_code == 403, (name, response.status_code)
    assert _snapshot(world.project) == before


def test_an_htmx_write_with_the_page_token_is_accepted(personas, world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.owner)
    page = client.get(reverse("rubric_detail", args=[world.project.slug, world.rubric.slug]))
    token = page.context["csrf_token"]
    assert f'"X-CSRFToken": "{token}"' in page.content.decode()  # hx-headers on <body>
    response = client.post(
        reverse("criterion_move", args=[world.project.slug, world.rubric.slug,
                                        world.criterion.pk]),
        {"direction": "down"}, HTTP_X_CSRFTOKEN=str(token), HTTP_HX_REQUEST="true")
    assert response.status_code == 200


def _api_calls(world) -> list[tuple[str, str, str, dict]]:
    """(method, the operation's path in the OpenAPI schema, a concrete path, body) for every
    API operation: `test_the_sweep_covers_every_api_operation` fails when one is missing."""
    slug = world.project.slug
    base = f"/api/v1/projects/{slug}"
    ops = "/api/v1/projects/{slug}"
    rows = SimpleUploadedFile("rows.jsonl", b'{"id": "x1", "prompt": "p", "response": "r"}\n')
    return [
        ("get", ops + "/rubrics", f"{base}/rubrics", {}),
        ("get", ops + "/rubrics/{rubric_slug}/yaml", f"{base}/rubrics/{world.rubric.slug}/yaml",
         {}),
        ("get", ops + "/datasets", f"{base}/datasets", {}),
        ("post", ops + "/datasets/{name}/items", f"{base}/datasets/{world.dataset.name}/items",
         {"file": rows}),
        ("get", ops + "/imports/{job_id}", f"{base}/imports/{world.import_job.pk}", {}),
        ("get", ops + "/runs/{run_id}", f"{base}/runs/{world.run.pk}", {}),
        ("get", ops + "/rubrics/{rubric_slug}/calibration",
         f"{base}/rubrics/{world.rubric.slug}/calibration?dataset={world.dataset.name}", {}),
        ("post", ops + "/runs/{run_id}/{action}", f"{base}/runs/{world.run.pk}/cancel", {}),
        ("post", ops + "/runs", f"{base}/runs", {"rubric": world.rubric.slug,
                                                 "dataset": world.dataset.name,
                                                 "model": "openai/x"}),
        ("post", ops + "/exports", f"{base}/exports", {"run": world.run.pk, "format": "json",
                                                       "force": True}),
        ("get", "/api/v1/exports/{export_id}/bundle.zip",
         f"/api/v1/exports/{world.export.pk}/bundle.zip", {}),
        ("get", ops + "/settings", f"{base}/settings", {}),
        ("patch", ops + "/settings", f"{base}/settings", {"gate_min_n": 7}),
        ("post", ops + "/members", f"{base}/members", {"user": "outsider", "role": "owner"}),
        ("post", "/api/v1/projects", "/api/v1/projects", {"slug": "sweep-new", "name": "n"}),
        ("post", ops + "/probes", f"{base}/probes", {"rubric": world.rubric.slug,
                                                     "dataset": world.dataset.name,
                                                     "judge": str(world.run.pk)}),
        # Who may look is decided before the probe run is looked up (there is none here).
        ("get", ops + "/probes/{probe_run_id}", f"{base}/probes/1", {}),
    ]


def _labelling_calls(world) -> list[tuple[str, str, str, dict]]:
    """The annotators' endpoints (any member's token, for the sessions they are assigned to):
    same shape as _api_calls."""
    ops = "/api/v1/projects/{slug}/labelling/sessions"
    base = f"/api/v1/projects/{world.project.slug}/labelling/sessions"
    one = f"{base}/{world.session.pk}"
    return [
        ("get", ops, base, {}),
        ("get", ops + "/{session_id}/next", f"{one}/next", {}),
        ("post", ops + "/{session_id}/submit", f"{one}/submit",
         {"assignment": 0, "values": {"correct": 1, "safe": 1}}),
        ("post", ops + "/{session_id}/skip", f"{one}/skip", {"assignment": 0, "reason": "x"}),
        ("get", ops + "/{session_id}/mine", f"{one}/mine", {}),
    ]


def _call(client, method, path, body, token=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if method == "get":
        return client.get(path, **headers)
    if method == "patch":
        return client.patch(path, body, content_type="application/json", **headers)
    if any(isinstance(v, SimpleUploadedFile) for v in body.values()):
        for value in body.values():
            if isinstance(value, SimpleUploadedFile):
                value.seek(0)
        return client.post(path, body, **headers)  # multipart, as an upload is sent
    return client.post(path, body, content_type="application/json", **headers)


def test_the_sweep_covers_every_api_operation(world):
    from apps.api.api import api

    schema = api.get_openapi_schema()
    operations = {(method, path) for path, methods in schema["paths"].items()
                  for method in methods}
    swept = {(method, operation) for method, operation, _, _ in
             _api_calls(world) + _labelling_calls(world)}
    assert operations == swept


def test_the_api_is_404_to_a_token_of_another_project(personas, world):
    other_owner = UserFactory(username="other-api")
    MembershipFactory(project=personas.other_project, user=other_owner, role=Role.OWNER)
    _, token = token_create(user=other_owner, project=personas.other_project, name="t")
    before = _snapshot(world.project)
    for method, operation, path, body in _api_calls(world) + _labelling_calls(world):
        if operation == "/api/v1/projects":
            continue  # names no project: its owner may create one (test_headless.py)
        response = _call(Client(), method, path, body, token)
        assert response.status_code == 404, (method, path, response.status_code)
    assert _snapshot(world.project) == before


def test_the_labelling_api_answers_a_labellers_token(personas, world):
    """The annotators' endpoints are the labeller's (tests/labeling/test_api.py has the rest);
    assignment 0 is nobody's, so the writes answer 404 and change nothing."""
    _, token = token_create(user=personas.labeller, project=world.project, name="t")
    before = _snapshot(world.project)
    for method, _, path, body in _labelling_calls(world):
        response = _call(Client(), method, path, body, token)
        expected = 404 if method == "post" else 200
        assert response.status_code == expected, (method, path, response.status_code)
    assert _snapshot(world.project) == before


def test_the_api_is_403_to_a_labellers_token(personas, world):
    _, token = token_create(user=personas.labeller, project=world.project, name="t")
    before = _snapshot(world.project)
    for method, _, path, body in _api_calls(world):
        response = _call(Client(), method, path, body, token)
        assert response.status_code == 403, (method, path, response.status_code)
    assert _snapshot(world.project) == before


def test_the_api_is_401_without_credentials(world):
    for method, _, path, body in _api_calls(world) + _labelling_calls(world):
        response = _call(Client(), method, path, body)
        assert response.status_code == 401, (method, path, response.status_code)


def test_a_session_api_write_needs_the_csrf_token(personas, world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.owner)
    response = client.post(f"/api/v1/projects/{world.project.slug}/runs/{world.run.pk}/cancel",
                           {}, content_type="application/json")
    assert response.status_code == 403


def test_a_nul_in_a_name_is_404_not_a_server_error(personas, world):
    """PostgreSQL refuses NUL in a query: the loaders answer 404 before asking it."""
    _, token = token_create(user=personas.owner, project=world.project, name="t")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    client = Client()
    assert client.get("/api/v1/projects/ac%00me/rubrics", **auth).status_code == 404
    assert client.get(f"/api/v1/projects/{world.project.slug}/rubrics/a%00b/yaml",
                      **auth).status_code == 404
    started = client.post(f"/api/v1/projects/{world.project.slug}/runs",
                          {"rubric": "\x00", "dataset": "", "model": ""},
                          content_type="application/json", **auth)
    assert started.status_code == 404
    started = client.post(f"/api/v1/projects/{world.project.slug}/runs",
                          {"rubric": world.rubric.slug, "dataset": "a\x00", "model": "x"},
                          content_type="application/json", **auth)
    assert started.status_code == 404
