"""What an export may name: the model and the reference column are written into files a trainer
runs (reward.py, train_trl.py), so a value that is not a model or column name is refused with a
clear reason by the service, the page, the command and the API, and nothing is stored."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from apps.exports.models import Export
from apps.exports.services import judge_export, unpack
from apps.judging.models import JudgeRun
from tests.exports.helpers import imported_pairwise
from tests.exports.test_gate import run_command
from tests.world import build_world

INJECTION = 'x"""\nimport os; os.system("touch /tmp/pwned")\n"""'


@pytest.fixture
def world(personas):
    return build_world(personas.project, owner=personas.owner, member=personas.editor)


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "ollama/llama3:8b",
                                   "vertex_ai/gemini-1.5-pro@001", "gpt-3.5-turbo"])
def test_litellm_model_names_are_accepted(world, model):
    export = judge_export(run=world.imported_run, fmt="json", force=True, model=model)
    assert export.model.endswith(model.split("/")[-1])


@pytest.mark.parametrize("column", ["reference", "sft_answer", "sft-answer", "_ref", "a.b"])
def test_column_names_are_accepted(personas, column):
    run = imported_pairwise(personas.project)
    export = judge_export(run=run, fmt="trl", force=True, reference_column=column)
    assert f"REFERENCE_COLUMN = {column!r}" in unpack(export)["reward.py"].decode()


def test_a_pointwise_rubric_takes_no_reference_column(world, tmp_path):
    before = Export.objects.count()
    with pytest.raises(ValidationError) as refused:
        judge_export(run=world.imported_run, fmt="trl", force=True, reference_column="sft")
    assert "for pairwise rubrics" in refused.value.message_dict["reference_column"][0]
    code, _, err = run_command("--project", world.project.slug, "--rubric", world.rubric.slug,
                               "--judge", "imported-judge", "--format", "trl", "--force",
                               "--reference-column", "reference",
                               "--out", str(tmp_path / "out"))
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--reference-column is for pairwise rubrics" in lines[0], err
    assert f"'{world.rubric.slug}' is pointwise" in lines[0]
    assert not (tmp_path / "out").exists() and Export.objects.count() == before


@pytest.mark.parametrize("field,value", [
    ("model", INJECTION), ("model", "gpt 4"), ("model", "-rf"),
    ("reference_column", "ref\nimport os"), ("reference_column", "sft answer"),
    ("reference_column", "1st"), ("reference_column", "x" * 81),
])
def test_the_service_refuses_what_a_bundle_cannot_carry(world, field, value):
    before = Export.objects.count()
    kwargs = {"model": "openai/gpt-4o-mini", "reference_column": "reference", field: value}
    with pytest.raises(ValidationError) as refused:
        judge_export(run=world.imported_run, fmt="trl", force=True, **kwargs)
    assert set(refused.value.message_dict) == {field}
    assert "is not a" in refused.value.message_dict[field][0]
    assert Export.objects.count() == before


def test_an_imported_judge_whose_name_is_no_model_needs_one(world):
    JudgeRun.objects.filter(pk=world.imported_run.pk).update(name="My judge (v2)")
    world.imported_run.refresh_from_db()
    with pytest.raises(ValidationError) as refused:
        judge_export(run=world.imported_run, fmt="bundle", force=True)
    assert "'My judge (v2)' is not a litellm model name" in refused.value.message_dict["model"][0]
    export = judge_export(run=world.imported_run, fmt="bundle", force=True,
                          model="openai/gpt-4o-mini")
    assert export.model == "openai/gpt-4o-mini"


def test_the_page_shows_the_reason_beside_the_field_and_stores_nothing(personas, world):
    before = Export.objects.count()
    response = personas.client("owner").post(
        reverse("export_create", kwargs={"slug": world.project.slug}),
        {"run": world.imported_run.pk, "format": "trl", "force": "on",
         "reference_column": "<b>sft answer</b>", "model": "openai/gpt-4o-mini"})
    assert response.status_code == 422
    form = response.context["form"]
    assert "is not a column name" in form.errors["reference_column"][0]
    page = response.content.decode()
    assert "&lt;b&gt;sft answer&lt;/b&gt;" in page and "<b>sft answer</b>" not in page
    assert Export.objects.count() == before


def test_the_command_exits_with_a_one_line_reason(personas, tmp_path):
    run = imported_pairwise(personas.project)
    code, _, err = run_command("--project", personas.project.slug, "--rubric", "preference",
                               "--judge", run.name, "--format", "trl", "--force",
                               "--reference-column", "sft answer",
                               "--out", str(tmp_path / "out"))
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "'sft answer' is not a column name" in lines[0], err
    assert not (tmp_path / "out").exists()


def test_the_api_answers_422_with_the_reason(client, world):
    before = Export.objects.count()
    response = client.post(
        f"/api/v1/projects/{world.project.slug}/exports",
        data=json.dumps({"run": world.imported_run.pk, "format": "bundle", "force": True,
                         "model": INJECTION}),
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {world.raw_token}")
    assert response.status_code == 422
    assert "is not a litellm model name" in response.json()["detail"]
    assert Export.objects.count() == before
