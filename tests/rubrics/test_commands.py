"""rubric_import and rubric_export: the rubric as code, with one-line reasons on bad input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.rubrics.models import Rubric
from apps.rubrics.selectors import current_draft, latest_published
from tests.factories import ProjectFactory

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
POINTWISE_FILE = EXAMPLES / "helpfulness.yaml"
PAIRWISE_FILE = EXAMPLES / "preference.yaml"

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory(slug="kitchen")


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


def test_import_prints_slug_and_version(project):
    out, _ = run("rubric_import", str(POINTWISE_FILE), "--project", "kitchen")
    assert out.strip() == "helpfulness 1 draft"
    rubric = Rubric.objects.get(project=project, slug="helpfulness")
    assert current_draft(rubric).criteria.count() == 3


def test_import_with_publish_and_note(project):
    out, _ = run("rubric_import", str(PAIRWISE_FILE), "--project", "kitchen", "--publish",
                 "--note", "from the repo")
    assert out.strip() == "summary-preference 1 published"
    version = latest_published(Rubric.objects.get(slug="summary-preference"))
    assert version.note == "from the repo" and version.content_hash


def test_import_with_publish_uses_the_file_name_as_default_note(project):
    run("rubric_import", str(POINTWISE_FILE), "--project", "kitchen", "--publish")
    version = latest_published(Rubric.objects.get(slug="helpfulness"))
    assert version.note == "Imported from helpfulness.yaml"


def test_importing_the_same_file_again_changes_nothing(project):
    run("rubric_import", str(POINTWISE_FILE), "--project", "kitchen", "--publish")
    out, _ = run("rubric_import", str(POINTWISE_FILE), "--project", "kitchen", "--publish")
    assert out.strip() == "helpfulness 1 published (unchanged)"


def test_import_from_standard_input(project, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(POINTWISE_FILE.read_text(encoding="utf-8")))
    out, _ = run("rubric_import", "-", "--project", "kitchen")
    assert out.strip() == "helpfulness 1 draft"


@pytest.mark.parametrize("path", [POINTWISE_FILE, PAIRWISE_FILE], ids=["pointwise", "pairwise"])
def test_export_prints_the_file_that_was_imported(project, path):
    run("rubric_import", str(path), "--project", "kitchen", "--publish")
    slug = "helpfulness" if path == POINTWISE_FILE else "summary-preference"
    out, _ = run("rubric_export", "--project", "kitchen", "--rubric", slug)
    assert out == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", [POINTWISE_FILE, PAIRWISE_FILE], ids=["pointwise", "pairwise"])
def test_round_trip_through_the_commands_into_another_project(project, tmp_path, path):
    ProjectFactory(slug="copy")
    run("rubric_import", str(path), "--project", "kitchen", "--publish")
    slug = "helpfulness" if path == POINTWISE_FILE else "summary-preference"
    first, _ = run("rubric_export", "--project", "kitchen", "--rubric", slug)
    exported = tmp_path / "exported.yaml"
    exported.write_text(first, encoding="utf-8")
    run("rubric_import", str(exported), "--project", "copy", "--publish")
    second, _ = run("rubric_export", "--project", "copy", "--rubric", slug)
    assert second == first


def test_export_of_a_given_version_and_the_default(project, tmp_path):
    run("rubric_import", str(POINTWISE_FILE), "--project", "kitchen", "--publish")
    changed = tmp_path / "v2.yaml"
    changed.write_text(POINTWISE_FILE.read_text(encoding="utf-8").replace(
        "pass_threshold: 0.6", "pass_threshold: 0.7"), encoding="utf-8")
    out, _ = run("rubric_import", str(changed), "--project", "kitchen")
    assert out.strip() == "helpfulness 2 draft"
    # Without --version: the latest published version, not the draft in progress.
    default, _ = run("rubric_export", "--project", "kitchen", "--rubric", "helpfulness")
    assert "pass_threshold: 0.6" in default
    draft, _ = run("rubric_export", "--project", "kitchen", "--rubric", "helpfulness",
                   "--version", "2")
    assert "pass_threshold: 0.7" in draft


def test_import_of_a_missing_file_fails_with_one_line(project):
    with pytest.raises(CommandError) as exc:
        run("rubric_import", "/no/such/rubric.yaml", "--project", "kitchen")
    assert _one_line(exc) == "/no/such/rubric.yaml: no such file"


def test_import_of_a_file_that_is_not_utf8_fails_with_one_line(project, tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("rubric: caf\xe9\n".encode("latin-1"))
    with pytest.raises(CommandError) as exc:
        run("rubric_import", str(path), "--project", "kitchen")
    assert _one_line(exc) == f"{path}: not UTF-8 text"


def test_import_of_a_directory_fails_with_one_line(project, tmp_path):
    with pytest.raises(CommandError) as exc:
        run("rubric_import", str(tmp_path), "--project", "kitchen")
    assert _one_line(exc).startswith(f"{tmp_path}: ")


def test_import_of_invalid_yaml_names_the_line(project, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("rubric: x\ncriteria: [\n", encoding="utf-8")
    with pytest.raises(CommandError) as exc:
        run("rubric_import", str(path), "--project", "kitchen")
    assert _one_line(exc).startswith(f"{path}: (yaml) line 3, column 1: ")
    assert not Rubric.objects.exists()


def test_import_of_invalid_content_gives_the_first_path_and_lists_all_on_stderr(
    project, tmp_path
):
    text = POINTWISE_FILE.read_text(encoding="utf-8")
    text = text.replace("      anchor: Right and complete for the question asked.\n", "")
    text = text.replace("pass_threshold: 0.6", "pass_threshold: 6")
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    err = io.StringIO()
    with pytest.raises(CommandError) as exc:
        call_command("rubric_import", str(path), "--project", "kitchen", stderr=err)
    assert _one_line(exc) == (
        f"{path}: pass_threshold: must be from 0 to 1 (and 1 more above); nothing imported"
    )
    assert f"{path}: criteria[0].scale.levels[3].anchor: required" in err.getvalue()
    assert not Rubric.objects.exists()


def test_import_with_a_single_problem_states_it(project, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(POINTWISE_FILE.read_text(encoding="utf-8").replace(
        "- key: tone", "- key: safety"), encoding="utf-8")
    with pytest.raises(CommandError) as exc:
        run("rubric_import", str(path), "--project", "kitchen")
    assert _one_line(exc) == (
        f"{path}: criteria[2].key: 'safety' is used twice; nothing imported"
    )


def test_import_into_an_unknown_project_fails_with_one_line():
    with pytest.raises(CommandError) as exc:
        run("rubric_import", str(POINTWISE_FILE), "--project", "nope")
    assert _one_line(exc) == "no project with slug 'nope'"


def test_import_without_project_is_a_usage_error():
    with pytest.raises(CommandError, match="--project"):
        run("rubric_import", str(POINTWISE_FILE))


def test_export_of_an_unknown_rubric_or_version_fails_with_one_line(project):
    with pytest.raises(CommandError) as exc:
        run("rubric_export", "--project", "kitchen", "--rubric", "nope")
    assert _one_line(exc) == "no rubric 'nope' in project 'kitchen'"
    run("rubric_import", str(POINTWISE_FILE), "--project", "kitchen")
    with pytest.raises(CommandError) as exc:
        run("rubric_export", "--project", "kitchen", "--rubric", "helpfulness", "--version", "9")
    assert _one_line(exc) == "rubric 'helpfulness' has no version 9"
    with pytest.raises(CommandError, match="invalid int value"):
        run("rubric_export", "--project", "kitchen", "--rubric", "helpfulness", "--version", "x")


def test_export_of_an_unknown_project_fails_with_one_line():
    with pytest.raises(CommandError) as exc:
        run("rubric_export", "--project", "nope", "--rubric", "x")
    assert _one_line(exc) == "no project with slug 'nope'"
