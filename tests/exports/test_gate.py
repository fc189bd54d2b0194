"""The gate: a judge that fails the project's thresholds is refused by the service, the page,
the command and the API, each saying why; forced, the export says UNCALIBRATED in
calibration.json, its README and reward.py's docstring. A judge that agrees with the humans on
n >= 50 items (a live run on the fake provider) exports plainly."""

from __future__ import annotations

import ast
import io
import json
import zipfile

import pytest
from django.core.management import execute_from_command_line
from django.urls import reverse

from apps.exports.models import Export
from apps.exports.services import GateRefused, judge_export, unpack
from apps.projects.services import token_create
from tests.exports.helpers import calibrated_pointwise
from tests.world import build_world


@pytest.fixture
def world(personas):
    return build_world(personas.project, owner=personas.owner, member=personas.editor)


def files_of(export) -> dict[str, bytes]:
    return unpack(export)


def docstring(reward_py: bytes) -> str:
    return ast.get_docstring(ast.parse(reward_py.decode("utf-8"))) or ""


def run_command(*args: str) -> tuple[int, str, str]:
    """manage.py judge_export as the shell runs it: (exit code, stdout, stderr).

    run_from_argv closes the database connections when the command ends; the test's
    transaction lives on one of them, so that close is skipped here."""
    import contextlib
    from unittest import mock

    from django.db import connections

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            mock.patch.object(connections, "close_all"):
        try:
            execute_from_command_line(["manage.py", "judge_export", *args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def test_service_refuses_a_judge_that_fails_the_gate(world):
    before = Export.objects.count()
    with pytest.raises(GateRefused) as refused:
        judge_export(run=world.imported_run, fmt="bundle")
    reasons = refused.value.reasons
    assert any("correct: n = " in r and "is below 50" in r for r in reasons), reasons
    assert Export.objects.count() == before


def test_page_answers_422_with_the_reasons_and_offers_export_anyway(personas, world):
    client = personas.client("owner")
    url = reverse("export_create", kwargs={"slug": world.project.slug})
    before = Export.objects.count()
    response = client.post(url, {"run": world.imported_run.pk, "format": "bundle",
                                 "reference_column": "reference"})
    assert response.status_code == 422
    page = response.content.decode()
    assert "does not pass the gate" in page
    assert "correct: n = " in page and "is below 50" in page
    assert 'name="force"' in page and "Export anyway" in page
    assert Export.objects.count() == before

    forced = client.post(url, {"run": world.imported_run.pk, "format": "bundle",
                               "reference_column": "reference", "force": "on"})
    assert forced.status_code == 302
    export = Export.objects.latest("id")
    assert forced["Location"] == reverse("export_detail", kwargs={
        "slug": world.project.slug, "export_id": export.pk})
    assert not export.calibrated and export.forced
    detail = client.get(forced["Location"]).content.decode()
    assert "UNCALIBRATED" in detail


def test_command_exits_non_zero_with_a_one_line_reason(world, tmp_path):
    code, out, err = run_command("--project", world.project.slug, "--rubric", world.rubric.slug,
                                 "--judge", "imported-judge", "--format", "bundle",
                                 "--out", str(tmp_path / "b"))
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "does not pass the gate" in lines[0] and "is below 50" in lines[0]
    assert "--force" in lines[0]
    assert not (tmp_path / "b").exists()


def test_api_refuses_with_409_and_the_reasons(client, world):
    response = client.post(
        f"/api/v1/projects/{world.project.slug}/exports",
        data=json.dumps({"run": world.imported_run.pk, "format": "bundle"}),
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {world.raw_token}")
    assert response.status_code == 409
    body = response.json()
    assert any("correct: n = " in r and "is below 50" in r for r in body["reasons"])
    assert "force" in body["detail"]


def test_forced_export_says_uncalibrated_in_calibration_readme_and_docstring(world):
    export = judge_export(run=world.imported_run, fmt="bundle", force=True)
    assert export.forced and not export.calibrated
    files = files_of(export)
    calibration = json.loads(files["calibration.json"])
    assert calibration["status"] == "UNCALIBRATED"
    assert calibration["exported_despite_gate"] is True
    assert calibration["report"]["gate"]["passed"] is False
    assert "UNCALIBRATED" in files["README.md"].decode().splitlines()[0]
    assert "UNCALIBRATED" in docstring(files["reward.py"]).splitlines()[0]
    assert "CALIBRATED = False" in files["reward.py"].decode()


def test_forced_api_export_is_marked_uncalibrated(client, world):
    response = client.post(
        f"/api/v1/projects/{world.project.slug}/exports",
        data=json.dumps({"run": world.imported_run.pk, "format": "bundle", "force": True}),
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {world.raw_token}")
    assert response.status_code == 201
    body = response.json()
    assert body["calibrated"] is False and body["forced"] is True


@pytest.mark.django_db(transaction=True)
def test_a_judge_that_agrees_with_the_humans_exports_plainly(personas, fake, tmp_path):
    run = calibrated_pointwise(personas.project, fake, items=60)
    export = judge_export(run=run, fmt="bundle", user=personas.owner)
    assert export.calibrated and not export.forced
    report = export.report
    assert report["gate"] == {"passed": True, "reasons": []}
    for key in ("correct", "clear"):
        assert report["criteria"][key]["n"] == 60
        assert report["criteria"][key]["kappa"] == 1.0
    files = files_of(export)
    calibration = json.loads(files["calibration.json"])
    assert calibration["status"] == "CALIBRATED"
    assert calibration["exported_despite_gate"] is False
    assert "UNCALIBRATED" not in files["README.md"].decode()
    assert "CALIBRATED" in docstring(files["reward.py"]).splitlines()[0]
    assert "UNCALIBRATED" not in docstring(files["reward.py"])
    assert "CALIBRATED = True" in files["reward.py"].decode()

    # The page, the command and the API export it without "export anyway".
    client = personas.client("editor")
    response = client.post(reverse("export_create", kwargs={"slug": personas.project.slug}),
                           {"run": run.pk, "format": "openai", "reference_column": "reference"})
    assert response.status_code == 302
    assert Export.objects.latest("id").calibrated
    code, out, err = run_command("--project", personas.project.slug, "--rubric", "quality",
                                 "--judge", str(run.pk), "--format", "bundle",
                                 "--out", str(tmp_path / "bundle.zip"))
    assert code == 0, err
    assert out.startswith("export ") and "CALIBRATED" in out and "UNCALIBRATED" not in out
    with zipfile.ZipFile(tmp_path / "bundle.zip") as archive:
        assert any(n.endswith("/reward.py") for n in archive.namelist())
    _, raw = token_create(user=personas.editor, project=personas.project, name="ci")
    api = personas.client(None).post(
        f"/api/v1/projects/{personas.project.slug}/exports",
        data=json.dumps({"run": run.pk, "format": "json"}), content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.status_code == 201, api.content
    assert api.json()["calibrated"] is True and api.json()["forced"] is False
