"""Large uploads are imported by a real Celery worker in the background, with progress on the
job page (apps/intake/jobs.py); the web request only stores the file and answers at once."""

from __future__ import annotations

import json
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.datasets.models import Dataset, Item
from apps.intake.jobs import import_job_create, import_job_run
from apps.intake.models import ImportChunk, ImportJob, ImportStatus

MB = 1024 * 1024


def rows(n: int, *, bad_line: int | None = None, size: int = 600) -> bytes:
    lines = []
    for i in range(n):
        row = {"id": f"r{i}", "prompt": f"question {i}", "response": "y" * size}
        lines.append("{not json" if i + 1 == bad_line else json.dumps(row))
    return ("\n".join(lines) + "\n").encode()


def upload(client, slug: str, data: bytes, name: str = "big"):
    return client.post(reverse("dataset_upload", args=[slug]),
                       {"name": name, "file": SimpleUploadedFile("rows.jsonl", data)})


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_large_upload_is_imported_by_a_worker_with_progress(personas, start_worker, settings):
    settings.IMPORT_INLINE_MAX_MB = 1
    data = rows(8000)  # about 5 MB: several chunks
    assert len(data) > 4 * MB
    client = personas.client("editor")

    response = upload(client, personas.project.slug, data)

    assert response.status_code == 302, response.content.decode()[:3000]
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("import_detail", args=[personas.project.slug, job.pk])
    assert job.status == ImportStatus.QUEUED and job.bytes_total == len(data)
    assert ImportChunk.objects.filter(job=job).count() == -(-len(data) // MB)
    assert not Dataset.objects.filter(name="big").exists()  # nothing imported in the request
    page = client.get(response["Location"]).content.decode()
    assert "Queued" in page and 'hx-trigger="every 1s"' in page

    start_worker()
    seen = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        job.refresh_from_db()
        seen.append(job.bytes_read)
        if not job.is_active:
            break
        time.sleep(0.1)
    assert job.status == ImportStatus.DONE, (job.status, job.summary, job.problems)
    assert seen == sorted(seen)  # progress only goes forward
    assert job.bytes_read == job.bytes_total
    assert job.summary == "Imported 8000 items into 'big'"
    assert Item.objects.filter(dataset__name="big").count() == 8000
    assert not ImportChunk.objects.filter(job=job).exists()
    partial = client.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert "Open the dataset" in partial and "every 1s" not in partial


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_bad_large_file_fails_with_its_problems_and_stores_nothing(personas, start_worker,
                                                                    settings):
    settings.IMPORT_INLINE_MAX_MB = 0
    client = personas.client("owner")
    response = upload(client, personas.project.slug, rows(3000, bad_line=2500))
    job = ImportJob.objects.get()
    start_worker()
    deadline = time.monotonic() + 90
    while job.is_active and time.monotonic() < deadline:
        time.sleep(0.2)
        job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert job.problems[0]["line"] == 2500 and "invalid JSON" in job.problems[0]["message"]
    assert not Dataset.objects.filter(name="big").exists()
    page = client.get(response["Location"]).content.decode()
    assert "Nothing was imported" in page and "line 2500" in page


@pytest.mark.django_db
def test_a_job_is_taken_once(personas):
    import io

    job = import_job_create(project=personas.project, stream=io.BytesIO(rows(10)),
                            filename="rows.jsonl", dataset_name="once", fmt="jsonl")
    assert import_job_run(job.pk) == "done"
    assert import_job_run(job.pk) == "taken"  # a second delivery of the same message
    assert Item.objects.filter(dataset__name="once").count() == 10


def test_small_uploads_still_import_in_the_request(personas, db):
    response = upload(personas.client("owner"), personas.project.slug, rows(5), name="small")
    assert response.status_code == 302
    assert Dataset.objects.get(name="small").item_count == 5
    assert not ImportJob.objects.exists()


def test_the_job_page_is_for_editors_and_owners_of_the_project(personas, db):
    job = ImportJob.objects.create(project=personas.project, dataset_name="d",
                                   filename="f.jsonl", fmt="jsonl")
    url = reverse("import_detail", args=[personas.project.slug, job.pk])
    assert personas.client("owner").get(url).status_code == 200
    assert personas.client("editor").get(url).status_code == 200
    assert personas.client("labeller").get(url).status_code == 403
    assert personas.client("outsider").get(url).status_code == 404
    assert personas.client(None).get(url).status_code == 302
    assert personas.client("owner").post(url).status_code == 405
    assert personas.client("owner").get(
        reverse("import_detail", args=[personas.project.slug, job.pk + 999])).status_code == 404


@pytest.mark.django_db
def test_the_api_answers_a_large_file_with_202_and_the_job(personas, settings):
    from apps.projects.services import token_create

    settings.IMPORT_INLINE_MAX_MB = 0
    _, raw = token_create(user=personas.editor, project=personas.project, name="ci")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    client = personas.client(None)
    response = client.post(f"/api/v1/projects/{personas.project.slug}/datasets/api-big/items",
                           {"file": SimpleUploadedFile("rows.jsonl", rows(20))}, **auth)
    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["dataset_name"]) == ("queued", "api-big")
    import_job_run(body["id"])  # what the worker does (the worker itself: the tests above)
    status = client.get(f"/api/v1/projects/{personas.project.slug}/imports/{body['id']}",
                        **auth).json()
    assert status["status"] == "done" and status["dataset"]["item_count"] == 20
