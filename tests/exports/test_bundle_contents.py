"""What a bundle carries besides reward.py (issue: the bundle): judge.json describes the judge,
calibration.json the evidence, rubric.yaml imports back as the same version, and the README
says what the judge is, how well it is calibrated, what it costs and how each trainer uses it."""

from __future__ import annotations

import json

import pytest

from apps.exports.services import judge_export, unpack
from apps.rubrics import content as content_mod
from apps.rubrics import yaml_io
from tests.world import build_world


@pytest.fixture
def world(personas):
    return build_world(personas.project, owner=personas.owner, member=personas.editor)


@pytest.fixture
def files(world, personas):
    export = judge_export(run=world.imported_run, fmt="bundle", user=personas.editor,
                          force=True, model="openai/gpt-4o-mini")
    return unpack(export)


def test_judge_json_holds_the_whole_judge(world, files):
    judge = json.loads(files["judge.json"])
    version = world.published
    assert judge["rubric"]["version"] == version.number
    assert judge["rubric"]["content_hash"] == version.content_hash
    assert judge["judge"]["user_template"] and "system_template" in judge["judge"]
    assert {c["key"]: c["weight"] for c in judge["criteria"]} == {"correct": 2, "safe": 1}
    assert [lv["anchor"] for lv in judge["criteria"][0]["scale"]["levels"]] == [
        "Mostly wrong.", "Partly right.", "Fully right."]
    assert judge["model"]["model"] == "openai/gpt-4o-mini"
    assert {"temperature", "max_tokens", "samples", "timeout_s"} <= set(judge["model"])
    assert set(judge["output_schema"]) == {"correct", "safe"}
    assert judge["aggregation"]["weights"] == {"correct": 2, "safe": 1}
    assert judge["pairwise"]["orders"] == []  # pointwise: one order
    assert "api_key" not in json.dumps(judge).lower()


def test_calibration_json_holds_the_evidence(world, files):
    calibration = json.loads(files["calibration.json"])
    assert calibration["status"] == "UNCALIBRATED"
    assert calibration["exported_at"]
    assert calibration["rubric"]["content_hash"] == world.published.content_hash
    assert calibration["judge_run"]["id"] == world.imported_run.pk
    assert calibration["judge_run"]["name"] == "imported-judge"
    assert calibration["judge_run"]["created_at"]
    report = calibration["report"]
    assert report["dataset"] == world.dataset.name
    assert report["dataset_size"] == world.dataset.item_count
    assert report["generated_at"]
    correct = report["criteria"]["correct"]
    assert 0 < correct["n"] <= world.dataset.item_count
    assert {"kappa", "kappa_ci95", "human_alpha", "weight"} <= set(correct)
    assert report["gate"]["passed"] is False and report["gate"]["reasons"]


def test_rubric_yaml_imports_back_as_the_same_version(world, files):
    content = content_mod.validate(yaml_io.parse(files["rubric.yaml"].decode()))
    assert content_mod.content_hash(content) == world.published.content_hash


def test_readme_says_what_it_is_its_calibration_cost_key_and_each_trainer(world, files):
    readme = files["README.md"].decode()
    first = readme.splitlines()[0]
    assert world.rubric.name in first and f"v{world.published.number}" in first
    assert "UNCALIBRATED" in first
    n = json.loads(files["calibration.json"])["report"]["criteria"]["correct"]["n"]
    assert f"`correct`: kappa 0.00 (slight), 95% interval 0.00 to 0.00, n = {n} on " \
        f"'{world.dataset.name}'; the humans agree among themselves at alpha" in readme
    assert "Gate: correct: n = " in readme  # why it failed
    assert "`OPENAI_API_KEY`" in readme  # the key the model needs, from the environment
    k = json.loads(files["judge.json"])["model"]["samples"]
    assert f"Cost: {2 * k} judge call(s) per completion" in readme  # two weighted criteria
    for section in ("## TRL (GRPOTrainer)", "## verl", "## OpenRLHF", "## HTTP"):
        assert section in readme
    assert "reward.custom_reward_function" in readme or "custom_reward_function:" in readme
    assert "--reward.remote_url" in readme and "/get_reward" in readme


def test_a_pairwise_readme_offers_both_ways_and_states_their_cost(personas):
    from apps.judging.models import JudgeRun, RunKind, RunStatus
    from apps.rubrics.services import rubric_import
    from tests.factories import DatasetFactory
    from tests.judging.helpers import PAIRWISE

    _, version, _ = rubric_import(project=personas.project,
                                  content=content_mod.validate(PAIRWISE), publish=True,
                                  note="v1")
    dataset = DatasetFactory(project=personas.project, name="pairs", kind="pairwise")
    run = JudgeRun.objects.create(project=personas.project, rubric_version=version,
                                  dataset=dataset, name="judge", kind=RunKind.IMPORTED,
                                  status=RunStatus.COMPLETED, model="openai/gpt-4o-mini")
    files = unpack(judge_export(run=run, fmt="bundle", force=True,
                                reference_column="sft_answer"))
    readme = files["README.md"].decode()
    k = json.loads(files["judge.json"])["model"]["samples"]
    assert "**Against a reference** (default)" in readme and "`sft_answer`" in readme
    assert "**Within the group** (`RUBRICLAB_PAIRWISE_MODE=group`)" in readme
    assert f"{2 * k} calls per completion" in readme  # one criterion, both orders
    assert f"G(G-1)/2 x {2 * k} calls per prompt" in readme
    assert "REFERENCE_COLUMN = 'sft_answer'" in files["reward.py"].decode()


def test_a_rubric_name_stays_inside_reward_py_docstring(world):
    import ast

    from apps.rubrics.models import Rubric

    name = 'Evil"""\nPLANTED = 1\n"""\\ "'
    Rubric.objects.filter(pk=world.rubric.pk).update(name=name)
    world.imported_run.rubric_version.rubric.refresh_from_db()
    source = unpack(judge_export(run=world.imported_run, fmt="bundle", force=True,
                                 model="openai/gpt-4o-mini"))["reward.py"].decode()
    tree = ast.parse(source)  # a name must not make reward.py unparseable ...
    planted = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "PLANTED"]
    assert planted == []  # ... nor put code of its own into it
    assert (ast.get_docstring(tree) or "").startswith(f"RubricLab reward: {name} v1")
