"""API tokens (shown once, stored hashed, revocable) and the JSON API under /api/v1/."""

from __future__ import annotations

import hashlib
import io
import json
import re

import pytest
import yaml
from django.test import Client
from django.urls import reverse

from apps.datasets.models import Dataset, Item
from apps.projects.models import ApiToken, Membership, Role
from apps.projects.services import token_create
from tests.world import build_world

TOKEN_RE = re.compile(r"rl_[A-Za-z0-9_-]{40,}")


@pytest.fixture
def world(personas):
    return build_world(personas.project, owner=personas.owner, member=personas.editor)


def _bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _token(personas, who: str, project=None) -> str:
    _, raw = token_create(user=getattr(personas, who), project=project or personas.project,
                          name=f"{who} script")
    return raw


def _api(path: str) -> str:
    return f"/api/v1/{path}"


# -- tokens in the browser ----------------------------------------------------------------------

def test_a_new_token_is_shown_once_and_only_its_hash_is_stored(personas):
    client = personas.client("labeller")  # any member may hold tokens
    url = reverse("token_list", args=["acme"])
    response = client.post(url, {"name": "nightly CI"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = TOKEN_RE.search(response.content.decode()).group(0)
    token = ApiToken.objects.get(user=personas.labeller, project=personas.project)
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(token.prefix) and len(token.prefix) < 12
    stored = [str(v) for v in ApiToken.objects.filter(pk=token.pk).values().first().values()]
    assert not any(raw in value for value in stored)
    again = client.get(url).content.decode()
    assert raw not in again and "nightly CI" in again


def test_a_token_needs_a_name(personas):
    response = personas.client("owner").post(reverse("token_list", args=["acme"]), {"name": " "})
    assert response.status_code == 422
    assert not ApiToken.objects.exists()


def test_the_token_page_lists_only_ones_own_tokens(personas):
    _token(personas, "editor")
    mine = _token(personas, "owner")
    page = personas.client("owner").get(reverse("token_list", args=["acme"])).content.decode()
    assert "owner script" in page and "editor script" not in page
    assert mine not in page


def test_a_revoked_token_stops_working(personas, world):
    raw = _token(personas, "editor")
    token = ApiToken.objects.get(user=personas.editor)
    client = Client()
    assert client.get(_api("projects/acme/rubrics"), **_bearer(raw)).status_code == 200
    response = personas.client("editor").post(reverse("token_revoke", args=["acme", token.pk]))
    assert response.status_code == 302
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert client.get(_api("projects/acme/rubrics"), **_bearer(raw)).status_code == 401


def test_nobody_revokes_someone_elses_token(personas):
    _token(personas, "editor")
    token = ApiToken.objects.get(user=personas.editor)
    response = personas.client("owner").post(reverse("token_revoke", args=["acme", token.pk]))
    assert response.status_code == 404
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_the_token_of_a_removed_member_stops_working(personas, world):
    raw = _token(personas, "editor")
    assert Client().get(_api("projects/acme/datasets"), **_bearer(raw)).status_code == 200
    membership = Membership.objects.get(project=personas.project, user=personas.editor)
    personas.client("owner").post(reverse("member_remove", args=["acme", membership.pk]))
    assert Client().get(_api("projects/acme/datasets"), **_bearer(raw)).status_code == 401


def test_the_token_of_a_deactivated_account_stops_working(personas, world):
    raw = _token(personas, "editor")
    personas.editor.is_active = False
    personas.editor.save()
    assert Client().get(_api("projects/acme/datasets"), **_bearer(raw)).status_code == 401


def test_a_token_records_when_it_was_last_used(personas, world):
    raw = _token(personas, "editor")
    Client().get(_api("projects/acme/datasets"), **_bearer(raw))
    assert ApiToken.objects.get(user=personas.editor).last_used_at is not None


# -- the API ------------------------------------------------------------------------------------

def test_list_rubrics_with_a_token(personas, world, django_assert_max_num_queries):
    raw = _token(personas, "editor")
    with django_assert_max_num_queries(6):
        response = Client().get(_api("projects/acme/rubrics"), **_bearer(raw))
    assert response.status_code == 200
    [rubric] = response.json()
    assert rubric["slug"] == world.rubric.slug
    assert rubric["latest_published"] == 1
    assert [(v["number"], v["published"]) for v in rubric["versions"]] == [(1, True), (2, False)]


def test_list_datasets_with_a_token(personas, world):
    raw = _token(personas, "owner")
    response = Client().get(_api("projects/acme/datasets"), **_bearer(raw))
    assert response.status_code == 200
    assert response.json() == [{"id": world.dataset.pk, "name": "acme-data", "kind": "pointwise",
                                "item_count": 3, "texts_available": True}]


def test_rubric_yaml_is_the_latest_published_version(personas, world):
    raw = _token(personas, "editor")
    response = Client().get(_api(f"projects/acme/rubrics/{world.rubric.slug}/yaml"),
                            **_bearer(raw))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/x-yaml")
    assert response["X-Rubric-Version"] == "1"
    content = yaml.safe_load(response.content)
    assert content["rubric"] == world.rubric.slug
    assert [c["key"] for c in content["criteria"]] == ["correct", "safe"]


def test_rubric_yaml_of_a_chosen_version(personas, world):
    raw = _token(personas, "editor")
    url = _api(f"projects/acme/rubrics/{world.rubric.slug}/yaml")
    draft = Client().get(url, {"version": 2}, **_bearer(raw))
    assert draft.status_code == 200 and draft["X-Rubric-Version"] == "2"
    assert Client().get(url, {"version": 9}, **_bearer(raw)).status_code == 404
    assert Client().get(url, {"version": "two"}, **_bearer(raw)).status_code == 422
    missing = _api("projects/acme/rubrics/no-such-rubric/yaml")
    assert Client().get(missing, **_bearer(raw)).status_code == 404


@pytest.mark.parametrize("path", [
    "projects/acme/rubrics", "projects/acme/datasets", "projects/acme/rubrics/helpful-acme/yaml",
])
def test_without_a_token_the_api_answers_401(personas, world, path):
    response = Client().get(_api(path))
    assert response.status_code == 401
    assert Client().get(_api(path), **_bearer("rl_not-a-real-token")).status_code == 401


@pytest.mark.parametrize("path", [
    "projects/other/rubrics",
    "projects/other/datasets",
    "projects/other/rubrics/helpful-other/yaml",
])
def test_a_token_opens_only_its_own_project(personas, world, path):
    build_world(personas.other_project, owner=personas.outsider, member=personas.outsider)
    # The owner of "acme" also joins "other": a token stays bound to the project it was made in.
    Membership.objects.create(project=personas.other_project, user=personas.owner,
                              role=Role.OWNER)
    raw = _token(personas, "owner")
    assert Client().get(_api(path), **_bearer(raw)).status_code == 404
    assert personas.client("owner").get(_api(path)).status_code == 200  # the session may


@pytest.mark.parametrize("path", [
    "projects/acme/rubrics", "projects/acme/datasets", "projects/acme/rubrics/helpful-acme/yaml",
])
def test_a_labeller_token_cannot_read_rubrics_or_datasets(personas, world, path):
    raw = _token(personas, "labeller")
    response = Client().get(_api(path), **_bearer(raw))
    assert response.status_code == 403
    assert "role" in response.json()["detail"]


def _jsonl(*rows: dict) -> io.BytesIO:
    buffer = io.BytesIO(b"".join(json.dumps(r).encode() + b"\n" for r in rows))
    buffer.name = "items.jsonl"
    return buffer


ROWS = [{"id": "a1", "prompt": "Boil an egg?", "response": "Nine minutes."},
        {"id": "a2", "prompt": "Poach an egg?", "response": "Three minutes.",
         "labels": [{"annotator": "kim", "criterion": "safe", "value": 1}]}]


def test_import_items_with_an_editor_token(personas, world):
    raw = _token(personas, "editor")
    response = Client().post(
        _api("projects/acme/datasets/answers v1/items?rubric=" + world.rubric.slug),
        {"file": _jsonl(*ROWS)}, **_bearer(raw),
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["ok"] and body["items"] == 2 and body["labels"] == 1
    dataset = Dataset.objects.get(project=personas.project, name="answers v1")
    assert dataset.item_count == 2 and body["dataset"]["id"] == dataset.pk


def test_import_with_a_bad_row_stores_nothing_and_lists_the_problem(personas, world):
    raw = _token(personas, "editor")
    response = Client().post(
        _api("projects/acme/datasets/answers v1/items"),
        {"file": _jsonl(ROWS[0], {"id": "a1", "prompt": "again", "response": "x"})},
        **_bearer(raw),
    )
    assert response.status_code == 422
    body = response.json()
    assert not body["ok"] and body["problems"][0]["line"] == 2
    assert not Dataset.objects.filter(name="answers v1").exists()


def test_a_labeller_token_cannot_import(personas, world):
    raw = _token(personas, "labeller")
    response = Client().post(_api("projects/acme/datasets/sneaky/items"),
                             {"file": _jsonl(*ROWS[:1])}, **_bearer(raw))
    assert response.status_code == 403
    assert not Dataset.objects.filter(name="sneaky").exists()


def test_an_outsider_session_gets_404(personas, world):
    client = personas.client("outsider")
    assert client.get(_api("projects/acme/rubrics")).status_code == 404
    response = client.post(_api("projects/acme/datasets/x/items"), {"file": _jsonl(*ROWS[:1])})
    assert response.status_code in (403, 404)  # no CSRF token, or no such project: no write
    assert not Item.objects.filter(dataset__name="x").exists()


def test_a_signed_in_browser_uses_the_api_with_its_session(personas, world):
    client = personas.client("editor")
    assert client.get(_api("projects/acme/rubrics")).status_code == 200
    assert client.get(_api("projects/acme/datasets")).json()[0]["name"] == "acme-data"


def test_a_session_write_needs_the_csrf_token(personas, world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.editor)
    url = _api("projects/acme/datasets/answers v1/items")
    assert client.post(url, {"file": _jsonl(*ROWS[:1])}).status_code == 403
    page = client.get(reverse("token_list", args=["acme"]))
    csrf = page.cookies["csrftoken"].value
    response = client.post(url, {"file": _jsonl(*ROWS[:1])}, HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 201


def test_a_token_write_needs_no_csrf_token(personas, world):
    raw = _token(personas, "editor")
    client = Client(enforce_csrf_checks=True)
    response = client.post(_api("projects/acme/datasets/answers v1/items"),
                           {"file": _jsonl(*ROWS[:1])}, **_bearer(raw))
    assert response.status_code == 201


@pytest.mark.django_db
def test_the_openapi_schema_lists_the_four_endpoints_and_both_ways_to_sign_in(client):
    schema = client.get(_api("openapi.json")).json()
    paths = schema["paths"]
    assert set(paths) >= {
        "/api/v1/projects/{slug}/rubrics",
        "/api/v1/projects/{slug}/rubrics/{rubric_slug}/yaml",
        "/api/v1/projects/{slug}/datasets",
        "/api/v1/projects/{slug}/datasets/{name}/items",
    }
    assert "get" in paths["/api/v1/projects/{slug}/rubrics"]
    assert "post" in paths["/api/v1/projects/{slug}/datasets/{name}/items"]
    schemes = schema["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} >= {"http", "apiKey"}


@pytest.mark.django_db
def test_the_api_docs_page_works_offline_under_our_csp(client):
    response = client.get(_api("docs"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Content-Security-Policy" in response.headers
    # Everything it loads comes from our own static files: no CDN, no inline script.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    for attrs, body in scripts:
        assert "src=" in attrs or 'type="application/json"' in attrs, attrs
        assert "src=" not in attrs or not body.strip()
    assert '"validatorUrl": null' in page  # no badge image from validator.swagger.io
    for asset in re.findall(r"""(?:src|href)="(/static/[^"]+)\"""", page):
        assert client.get(asset).status_code == 200, asset
