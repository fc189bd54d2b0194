"""Delivery of exports: the pages (persona block), provenance on the list, re-download of the
same bytes, the API download with a project token, and `judge_export` writing each format."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest
from django.urls import reverse

from apps.exports.models import Export
from apps.exports.services import judge_export
from apps.projects.services import token_create
from tests.exports.test_gate import run_command
from tests.world import build_world


@pytest.fixture
def world(personas):
    return build_world(personas.project, owner=personas.owner, member=personas.editor)


@pytest.fixture
def bundle(world, personas):
    return judge_export(run=world.imported_run, fmt="bundle", user=personas.editor, force=True)


def urls(world, export) -> dict[str, str]:
    slug = world.project.slug
    return {
        "export_list": reverse("export_list", kwargs={"slug": slug}),
        "export_create": reverse("export_create", kwargs={"slug": slug}),
        "export_detail": reverse("export_detail", kwargs={"slug": slug,
                                                          "export_id": export.pk}),
        "export_download": reverse("export_download", kwargs={"slug": slug,
                                                              "export_id": export.pk}),
    }


# -- persona block (STYLE.md 9) ------------------------------------------------------------
@pytest.mark.parametrize("who", ["owner", "editor"])
@pytest.mark.parametrize("page", ["export_list", "export_create", "export_detail",
                                  "export_download"])
def test_owner_and_editor_can_use_the_export_pages(personas, world, bundle, who, page):
    response = personas.client(who).get(urls(world, bundle)[page])
    assert response.status_code == 200


@pytest.mark.parametrize("page", ["export_list", "export_create", "export_detail",
                                  "export_download"])
def test_labeller_gets_403(personas, world, bundle, page):
    client = personas.client("labeller")
    assert client.get(urls(world, bundle)[page]).status_code == 403


def test_labeller_cannot_export(personas, world):
    before = Export.objects.count()
    response = personas.client("labeller").post(
        urls(world, world.export)["export_create"],
        {"run": world.imported_run.pk, "format": "bundle", "force": "on",
         "reference_column": "reference"})
    assert response.status_code == 403
    assert Export.objects.count() == before


@pytest.mark.parametrize("page", ["export_list", "export_create", "export_detail",
                                  "export_download"])
def test_outsider_gets_404(personas, world, bundle, page):
    assert personas.client("outsider").get(urls(world, bundle)[page]).status_code == 404


@pytest.mark.parametrize("page", ["export_detail", "export_download"])
def test_bad_id_is_404(personas, world, page):
    url = reverse(page, kwargs={"slug": world.project.slug, "export_id": 999999})
    assert personas.client("owner").get(url).status_code == 404


@pytest.mark.parametrize("page", ["export_list", "export_detail", "export_download"])
def test_wrong_method_is_405(personas, world, bundle, page):
    assert personas.client("owner").post(urls(world, bundle)[page]).status_code == 405


# -- provenance and re-download -------------------------------------------------------------
def test_the_list_shows_provenance(personas, world, bundle, django_assert_max_num_queries):
    for fmt in ("json", "openai", "verl"):
        judge_export(run=world.imported_run, fmt=fmt, user=personas.owner, force=True)
    client = personas.client("owner")
    url = urls(world, bundle)["export_list"]
    with django_assert_max_num_queries(8):
        response = client.get(url)
    page = response.content.decode()
    assert response.status_code == 200
    assert bundle.filename in page
    assert "editor" in page and "owner" in page  # who
    assert bundle.created_at.strftime("%Y-%m-%d") in page  # when
    assert "imported-judge" in page and f"run #{world.imported_run.pk}" in page  # judge
    assert f"{world.rubric.name}</a> v{world.published.number}" in page  # version
    assert world.published.content_hash[:12] in page  # hash
    correct = bundle.report["criteria"]["correct"]
    assert f"kappa {correct['kappa']:.2f}" in page and f"n = {correct['n']}" in page
    assert "UNCALIBRATED" in page


def test_redownload_returns_the_same_bytes(personas, world, bundle):
    client = personas.client("editor")
    url = urls(world, bundle)["export_download"]
    first, second = client.get(url), client.get(url)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content == bytes(bundle.artifact)
    digest = hashlib.sha256(first.content).hexdigest()
    assert digest == bundle.artifact_sha256 == first["X-Content-SHA256"]
    assert first["Content-Type"] == "application/zip"
    assert bundle.filename in first["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(first.content)) as archive:
        names = {n.split("/", 1)[1] for n in archive.namelist()}
    assert names == {"judge.json", "calibration.json", "rubric.yaml", "reward.py", "README.md"}


def test_detail_page_shows_the_evidence(personas, world, bundle):
    page = personas.client("owner").get(urls(world, bundle)["export_detail"]).content.decode()
    assert bundle.artifact_sha256 in page
    assert world.published.content_hash[:12] in page
    assert "UNCALIBRATED" in page


# -- API download ----------------------------------------------------------------------------
def api_get(client, export, raw):
    return client.get(f"/api/v1/exports/{export.pk}/bundle.zip",
                      HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_api_download_with_a_project_token(client, world, bundle):
    response = api_get(client, bundle, world.raw_token)
    assert response.status_code == 200
    assert response.content == bytes(bundle.artifact)
    assert hashlib.sha256(response.content).hexdigest() == bundle.artifact_sha256


def test_api_download_with_another_projects_token_is_404(client, personas, world, bundle):
    _, raw = token_create(user=personas.outsider, project=personas.other_project, name="ci")
    response = api_get(client, bundle, raw)
    assert response.status_code == 404
    assert bytes(bundle.artifact)[:20] not in response.content


def test_api_download_with_a_labellers_token_is_403(client, personas, world, bundle):
    _, raw = token_create(user=personas.labeller, project=personas.project, name="ci")
    assert api_get(client, bundle, raw).status_code == 403


def test_api_download_without_a_token_is_401(client, bundle):
    assert client.get(f"/api/v1/exports/{bundle.pk}/bundle.zip").status_code == 401


def test_api_download_of_an_unknown_export_is_404(client, world):
    response = client.get("/api/v1/exports/999999/bundle.zip",
                          HTTP_AUTHORIZATION=f"Bearer {world.raw_token}")
    assert response.status_code == 404


# -- the command ------------------------------------------------------------------------------
def export_args(world, fmt, out, *extra):
    return ("--project", world.project.slug, "--rubric", world.rubric.slug,
            "--judge", "imported-judge", "--format", fmt, "--out", str(out), "--force", *extra)


BUNDLE_FILES = {"judge.json", "calibration.json", "rubric.yaml", "reward.py", "README.md"}


@pytest.mark.parametrize("fmt,extra", [("bundle", set()), ("trl", {"train_trl.py"}),
                                       ("verl", {"verl_reward.yaml"}),
                                       ("openrlhf", {"openrlhf_reward.sh"})])
def test_command_writes_a_bundle_folder(world, tmp_path, fmt, extra):
    code, out, err = run_command(*export_args(world, fmt, tmp_path / "out"))
    assert code == 0, err
    assert {p.name for p in (tmp_path / "out").iterdir()} == BUNDLE_FILES | extra
    assert "UNCALIBRATED" in out and str(tmp_path / "out") in out
    export = Export.objects.latest("id")
    assert export.format == fmt and export.forced


@pytest.mark.parametrize("fmt", ["bundle", "trl", "verl", "openrlhf"])
def test_command_writes_a_zip(world, tmp_path, fmt):
    target = tmp_path / "judge.zip"
    code, _, err = run_command(*export_args(world, fmt, target))
    assert code == 0, err
    export = Export.objects.latest("id")
    assert target.read_bytes() == bytes(export.artifact)
    with zipfile.ZipFile(target) as archive:
        assert {n.split("/", 1)[1] for n in archive.namelist()} >= BUNDLE_FILES


@pytest.mark.parametrize("fmt,top", [("openai", {"grader", "label_grader", "rubriclab"}),
                                     ("json", {"judge", "calibration"})])
def test_command_writes_json_to_a_file_or_into_a_folder(world, tmp_path, fmt, top):
    code, _, err = run_command(*export_args(world, fmt, tmp_path / "g.json"))
    assert code == 0, err
    assert set(json.loads((tmp_path / "g.json").read_text())) == top
    folder = tmp_path / "folder"
    folder.mkdir()
    code, _, err = run_command(*export_args(world, fmt, folder))
    assert code == 0, err
    [written] = list(folder.iterdir())
    assert written.name == Export.objects.latest("id").filename
    assert set(json.loads(written.read_text())) == top


@pytest.mark.parametrize("change,reason", [
    ({"--project": "nope"}, "no project with slug 'nope'"),
    ({"--rubric": "nope"}, "no rubric 'nope'"),
    ({"--judge": "nobody"}, "no finished judge 'nobody'"),
    ({"--format": "pdf"}, "unknown format 'pdf'"),
])
def test_command_exits_non_zero_with_a_one_line_reason_on_bad_input(world, tmp_path, change,
                                                                     reason):
    args = list(export_args(world, "bundle", tmp_path / "out"))
    for flag, value in change.items():
        args[args.index(flag) + 1] = value
    before = Export.objects.count()
    code, _, err = run_command(*args)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0], err
    assert Export.objects.count() == before
    assert not (tmp_path / "out").exists()


def test_command_refuses_a_file_where_a_folder_is_needed(world, tmp_path):
    (tmp_path / "taken").write_text("x")
    code, _, err = run_command(*export_args(world, "bundle", tmp_path / "taken"))
    assert code != 0 and len(err.strip().splitlines()) == 1 and "is a file" in err


@pytest.mark.parametrize("fmt,out", [("bundle", "folder"), ("trl", "judge.zip"),
                                     ("openai", "g.json"), ("json", "folder")])
def test_command_refuses_to_overwrite_without_overwrite(world, tmp_path, fmt, out):
    target = tmp_path / out
    if out == "folder" and fmt == "json":
        target.mkdir()
    code, _, err = run_command(*export_args(world, fmt, target))
    assert code == 0, err
    written = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    before = Export.objects.count()
    code, _, err = run_command(*export_args(world, fmt, target))
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "already holds" in lines[0] and "--overwrite" in lines[0], err
    assert Export.objects.count() == before  # refused before anything was made or written
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == written
    code, _, err = run_command(*export_args(world, fmt, target, "--overwrite"))
    assert code == 0, err
    assert Export.objects.count() == before + 1
    assert not list(tmp_path.rglob(".*.partial"))


def test_command_writes_into_an_existing_folder_that_holds_other_files(world, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = run_command(*export_args(world, "bundle", tmp_path))
    assert code == 0, err
    assert (tmp_path / "reward.py").exists() and (tmp_path / "notes.txt").read_text() == "mine"
