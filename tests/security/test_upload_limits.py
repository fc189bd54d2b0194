"""Upload limits (issue: security sweep): a request with too many fields, too many files or too
large a form body is refused with 400 before a view stores anything. The dataset file's own
size cap (DATASET_MAX_UPLOAD_MB) is pinned in tests/datasets/test_views.py."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.datasets.models import Dataset
from apps.projects.models import Project

pytestmark = pytest.mark.django_db
ROW = b'{"id": "x1", "prompt": "p", "response": "r"}\n'


def test_the_limits_are_set():
    assert settings.DATA_UPLOAD_MAX_NUMBER_FIELDS == 1000
    assert settings.DATA_UPLOAD_MAX_NUMBER_FILES == 5
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE <= 5 * 1024 * 1024


def test_too_many_fields_are_refused(personas):
    before = Project.objects.count()
    fields = {f"f{i}": "x" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    response = personas.client("owner").post(reverse("project_create"),
                                             {"name": "Flood", **fields})
    assert response.status_code == 400
    assert Project.objects.count() == before


def test_too_many_files_are_refused(personas):
    files = {f"file{i}": SimpleUploadedFile(f"rows{i}.jsonl", ROW)
             for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1)}
    response = personas.client("owner").post(
        reverse("dataset_upload", args=[personas.project.slug]),
        {"name": "many", "kind": "", "rubric": "", "description": "", **files})
    assert response.status_code == 400
    assert not Dataset.objects.filter(project=personas.project, name="many").exists()


def test_the_file_limit_leaves_an_ordinary_upload_alone(personas):
    response = personas.client("owner").post(
        reverse("dataset_upload", args=[personas.project.slug]),
        {"name": "one", "kind": "", "rubric": "", "description": "",
         "file": SimpleUploadedFile("rows.jsonl", ROW)})
    assert response.status_code == 302
    assert Dataset.objects.filter(project=personas.project, name="one").exists()


def test_a_form_body_over_the_memory_cap_is_refused(personas):
    before = Project.objects.count()
    response = personas.client("owner").post(
        reverse("project_create"), {"name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})
    assert response.status_code == 400
    assert Project.objects.count() == before
