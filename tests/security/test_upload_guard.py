"""Bodies are refused on their headers (config/uploads.py): sign-in and size come before any
byte of the body is read, and a body that streams past its limit is stopped by the counting
upload handler. Each refusal is a 413 with a plain sentence (or the login redirect / 401)."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadhandler import StopUpload
from django.http.multipartparser import MultiPartParser
from django.test import RequestFactory, override_settings
from django.urls import reverse

from apps.datasets.models import Dataset
from apps.projects.services import token_create
from config.uploads import CountingUploadHandler

pytestmark = pytest.mark.django_db
GB = 1024 ** 3


class Untouchable(io.RawIOBase):
    """A body that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


def _post(client, url: str, length: int, **extra):
    """A POST that claims `length` bytes, whose body must never be read."""
    return client.generic("POST", url, b"", CONTENT_TYPE="multipart/form-data; boundary=x",
                          CONTENT_LENGTH=str(length), **{"wsgi.input": Untouchable()}, **extra)


def test_the_untouchable_body_does_fail_when_read(client):
    # The check on the tool itself: a small body goes on to CSRF, which reads it.
    with pytest.raises(AssertionError, match="the body was read"):
        _post(client, reverse("login"), 100)


def test_an_anonymous_1_gb_upload_gets_the_login_redirect_unread(client, personas):
    url = reverse("dataset_upload", args=[personas.project.slug])
    response = _post(client, url, GB)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_an_anonymous_1_gb_api_upload_gets_401_unread(client, personas):
    url = f"/api/v1/projects/{personas.project.slug}/datasets/d/items"
    assert _post(client, url, GB).status_code == 401
    assert _post(client, url, GB, HTTP_AUTHORIZATION="Bearer rl_not-a-token").status_code == 401


def test_a_1_gb_upload_by_an_editor_is_413_unread(personas):
    url = reverse("dataset_upload", args=[personas.project.slug])
    response = _post(personas.client("editor"), url, GB)
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == ("The upload is larger than this server accepts: the "
                                         "limit is 200 MB (DATASET_MAX_UPLOAD_MB).\n")


def test_a_1_gb_api_upload_with_a_token_is_413_unread(client, personas):
    _, raw = token_create(user=personas.editor, project=personas.project, name="ci")
    url = f"/api/v1/projects/{personas.project.slug}/datasets/d/items"
    response = _post(client, url, GB, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 413
    assert "200 MB (DATASET_MAX_UPLOAD_MB)" in response.json()["detail"]


def test_an_outsider_and_a_labeller_are_refused_before_the_body(personas):
    url = reverse("dataset_upload", args=[personas.project.slug])
    assert _post(personas.client("outsider"), url, 1000).status_code == 404
    assert _post(personas.client("labeller"), url, 1000).status_code == 403


@pytest.mark.parametrize("who", [None, "outsider", "owner"])
def test_any_other_route_refuses_a_body_over_request_max_body_mb(personas, who):
    client = personas.client(who)
    for url in (reverse("login"), reverse("project_create"),
                reverse("rubric_import", args=[personas.project.slug]), "/no/such/page/"):
        response = _post(client, url, 11 * 1024 * 1024)
        assert response.status_code == 413, url
        assert "10 MB (REQUEST_MAX_BODY_MB)" in response.content.decode()


def test_a_content_length_that_is_not_a_number_is_400(client):
    response = client.generic("POST", reverse("login"), b"", CONTENT_LENGTH="lots",
                              CONTENT_TYPE="multipart/form-data; boundary=x",
                              **{"wsgi.input": Untouchable()})
    assert response.status_code == 400


def test_the_counting_handler_stops_a_file_that_streams_past_its_limit():
    body = (b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n" + b"y" * 5000 + b"\r\n--x--\r\n")
    request = RequestFactory().post("/", body, content_type="multipart/form-data; boundary=x")
    request.upload_over_limit = False
    counting = CountingUploadHandler(request, limit=1000)
    memory = __import__("django.core.files.uploadhandler", fromlist=["x"]) \
        .MemoryFileUploadHandler(request)
    parser = MultiPartParser(request.META, io.BytesIO(body), [counting, memory], "utf-8")
    try:
        _, files = parser.parse()
    except StopUpload:  # pragma: no cover - the parser handles it itself
        files = {}
    assert request.upload_over_limit is True
    assert "file" not in files


@override_settings(DATASET_MAX_UPLOAD_MB=1)
def test_an_upload_under_the_limit_still_works(personas):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = personas.client("owner").post(
        reverse("dataset_upload", args=[personas.project.slug]),
        {"name": "ok", "file": SimpleUploadedFile("rows.jsonl",
                                                  b'{"id": "1", "prompt": "p", "response": "r"}')})
    assert response.status_code == 302
    assert Dataset.objects.filter(name="ok").exists()
