"""Rubric content and its YAML form: every error with its field path, and a stable round trip."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from apps.rubrics import content as content_mod
from apps.rubrics import prompting, yaml_io
from apps.rubrics.content import ContentError
from apps.rubrics.selectors import version_content
from apps.rubrics.services import rubric_import
from tests.factories import ProjectFactory

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
POINTWISE_FILE = EXAMPLES / "helpfulness.yaml"
PAIRWISE_FILE = EXAMPLES / "preference.yaml"


def _pointwise() -> dict:
    return yaml.safe_load(POINTWISE_FILE.read_text(encoding="utf-8"))


def _pairwise() -> dict:
    return yaml.safe_load(PAIRWISE_FILE.read_text(encoding="utf-8"))


def _errors(data) -> list[str]:
    with pytest.raises(ContentError) as info:
        content_mod.validate(data)
    return info.value.errors


def _steps(dotted: str) -> list:
    """'criteria.0.key' -> ['criteria', 0, 'key']"""
    return [int(step) if step.isdigit() else step for step in dotted.split(".")]


def _set(data: dict, path: list, value) -> dict:
    target = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return data


def _drop(data: dict, path: list) -> dict:
    target = data
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return data


# --- validation: each problem names its field path -------------------------------------------

@pytest.mark.parametrize("path,value,expected", [
    ("criteria.0.scale.levels.3.anchor", "", "criteria[0].scale.levels[3].anchor: required"),
    ("criteria.1.scale.levels.0.anchor", None, "criteria[1].scale.levels[0].anchor: required"),
    ("criteria.2.key", "correctness", "criteria[2].key: 'correctness' is used twice"),
    ("criteria.0.key", "Correct Ness",
     "criteria[0].key: lower-case letters, digits, - and _ (max 60)"),
    ("criteria.0.weight", -1, "criteria[0].weight: must be at least 0"),
    ("criteria.0.weight", "heavy", "criteria[0].weight: must be a number"),
    ("criteria.0.weight", True, "criteria[0].weight: must be a number"),
    ("criteria.0.weight", float("nan"), "criteria[0].weight: must be a finite number"),
    ("criteria.0.weight", float("inf"), "criteria[0].weight: must be a finite number"),
    ("criteria.0.name", "x" * 121, "criteria[0].name: at most 120 characters"),
    ("criteria.0.colour", "red", "criteria[0].colour: unknown field"),
    ("criteria.0.scale.type", "likert",
     "criteria[0].scale.type: must be one of binary, ordinal, categorical, pairwise"),
    ("criteria.0.scale.type", "pairwise",
     "criteria[0].scale.type: the pairwise scale needs mode: pairwise"),
    ("criteria.0.scale.levels", [], "criteria[0].scale.levels: required, a list of levels"),
    ("criteria.0.scale.levels.1.value", 7,
     "criteria[0].scale.levels: ordinal values must be 1, 2, ..., N with N >= 2"),
    ("criteria.0.scale.levels.1.score", 0.3,
     "criteria[0].scale.levels[1].score: only categories carry a score"),
    ("criteria.1.scale.levels.0.value", False,
     "criteria[1].scale.levels[0].value: a number, not false"),
    ("criteria.2.scale.levels.1.score", 2,
     "criteria[2].scale.levels[1].score: a number from 0 to 1"),
    ("criteria.2.scale.levels.1.score", None,
     "criteria[2].scale.levels[1].score: required when the criterion has weight"),
    ("criteria.2.scale.levels.1.anchor", 5, "criteria[2].scale.levels[1].anchor: must be text"),
    ("criteria.2.scale.levels.0", "friendly",
     "criteria[2].scale.levels[0]: must be a mapping with value, label and anchor"),
    ("criteria.2.scale", "ordinal",
     "criteria[2].scale: must be a mapping with 'type' and 'levels'"),
    ("criteria.1", "safety", "criteria[1]: must be a mapping"),
    ("criteria", [], "criteria: required, a list with at least one criterion"),
    ("colour", "red", "colour: unknown field"),
    ("mode", "ranking", "mode: must be one of pointwise, pairwise"),
    ("rubric", "Has Spaces", "rubric: a slug of lower-case letters, digits, - and _ (max 60)"),
    ("rubric", "slug\n", "rubric: a slug of lower-case letters, digits, - and _ (max 60)"),
    ("name", 42, "name: must be text"),
    ("name", "n" * 121, "name: at most 120 characters"),
    ("pass_threshold", 1.5, "pass_threshold: must be from 0 to 1"),
    ("pass_threshold", "high", "pass_threshold: must be a number"),
    ("prompt", "judge it", "prompt: a mapping with system and user templates"),
    ("prompt.assistant", "x", "prompt.assistant: unknown field"),
    ("prompt.user", "## Answer\n{{ response }}\n\n{{ respons }}",
     "prompt.user: line 4: unknown variable 'respons' (known: prompt, response, response_a, "
     "response_b, reference, task, criterion, criteria)"),
    ("prompt.system", "Be fair }}", "prompt.system: line 1: stray '}}'"),
    ("prompt.user", "{{ prompt }}", "prompt.user: must contain {{ response }}"),
    ("prompt.user", "{{ response }} vs {{ response_a }}",
     "prompt.user: {{ response_a }} is empty for this mode"),
])
def test_validation_error_names_the_field_path(path, value, expected):
    errors = _errors(_set(_pointwise(), _steps(path), value))
    assert expected in errors, errors


@pytest.mark.parametrize("path,expected", [
    ("rubric", "rubric: required"),
    ("criteria.0.key", "criteria[0].key: required"),
    ("criteria.0.scale", "criteria[0].scale: must be a mapping with 'type' and 'levels'"),
    ("criteria.0.scale.levels.2.value", "criteria[0].scale.levels[2].value: required"),
])
def test_a_missing_required_field_is_named(path, expected):
    assert expected in _errors(_drop(_pointwise(), _steps(path)))


def test_all_problems_are_reported_at_once():
    data = _pointwise()
    data["criteria"][0]["scale"]["levels"][3]["anchor"] = ""
    data["criteria"][2]["key"] = "safety"
    data["pass_threshold"] = 2
    assert len(_errors(data)) == 3


def test_pairwise_rubric_needs_the_pairwise_scale():
    data = _pairwise()
    data["criteria"][0]["scale"] = copy.deepcopy(_pointwise()["criteria"][1]["scale"])
    assert "criteria[0].scale.type: a pairwise rubric uses the pairwise scale" in _errors(data)


def test_pairwise_prompt_needs_both_responses():
    data = _pairwise()
    data["prompt"]["user"] = "{{ response_a }} {{ response }}"
    errors = _errors(data)
    assert "prompt.user: must contain {{ response_b }}" in errors
    assert "prompt.user: {{ response }} is empty for this mode" in errors


def test_at_least_one_criterion_carries_weight():
    data = _pointwise()
    for criterion in data["criteria"]:
        criterion["weight"] = 0
    assert "criteria: at least one criterion needs a weight above 0" in _errors(data)


def test_a_top_level_that_is_not_a_mapping():
    assert _errors(["a", "list"]) == [
        "(top): a rubric is a mapping with rubric, name, mode, criteria"
    ]


def test_unknown_fields_with_non_text_names_do_not_crash():
    data = _pointwise()
    data[1] = "x"
    data[None] = "y"
    assert {"1: unknown field", "None: unknown field"} <= set(_errors(data))


def test_missing_templates_get_the_modes_defaults_but_an_empty_system_stays_empty():
    data = _pairwise()
    del data["prompt"]
    content = content_mod.validate(data)
    assert content["prompt"] == {"system": prompting.DEFAULT_SYSTEM_PAIRWISE,
                                 "user": prompting.DEFAULT_USER_PAIRWISE}
    data["prompt"] = {"system": ""}
    assert content_mod.validate(data)["prompt"]["system"] == ""


def test_canonical_form_fills_defaults_and_trims_text():
    data = _pointwise()
    data["description"] = "\nLine one.   \nLine two.\t\n\n"
    data["criteria"][0]["name"] = ""
    data["criteria"][0]["weight"] = 2
    data["criteria"][0]["scale"]["levels"][0]["anchor"] = "  Wrong.  "
    data.pop("pass_threshold")
    content = content_mod.validate(data)
    assert content["description"] == "Line one.\nLine two."
    assert content["criteria"][0]["name"] == "correctness"
    assert content["criteria"][0]["weight"] == 2.0
    assert content["criteria"][0]["scale"]["levels"][0]["anchor"] == "Wrong."
    assert content["pass_threshold"] == 0.5


def test_content_hash_ignores_name_and_slug_but_not_an_anchor():
    content = content_mod.validate(_pointwise())
    renamed = dict(content, rubric="other-slug", name="Another name")
    assert content_mod.content_hash(renamed) == content_mod.content_hash(content)
    reworded = copy.deepcopy(content)
    reworded["criteria"][0]["scale"]["levels"][0]["anchor"] = "Different words."
    assert content_mod.content_hash(reworded) != content_mod.content_hash(content)


def test_trailing_spaces_do_not_change_the_hash():
    data = _pointwise()
    spaced = copy.deepcopy(data)
    spaced["prompt"]["user"] = spaced["prompt"]["user"].replace("\n", "  \n")
    assert content_mod.content_hash(content_mod.validate(spaced)) == content_mod.content_hash(
        content_mod.validate(data))


# --- YAML parsing ----------------------------------------------------------------------------

def _parse_errors(text: str) -> list[str]:
    with pytest.raises(ContentError) as info:
        yaml_io.parse(text)
    return info.value.errors


def test_yaml_syntax_error_names_line_and_column():
    text = "rubric: x\nname: [unclosed\nmode: pointwise\n"
    (error,) = _parse_errors(text)
    assert error.startswith("(yaml) line 3, column 5:"), error


def test_yaml_bad_indentation_names_its_line():
    (error,) = _parse_errors("rubric: x\ncriteria:\n- key: a\n   name: b\n")
    assert error == "(yaml) line 4, column 8: mapping values are not allowed here"


def test_yaml_key_written_twice_is_an_error_with_both_lines():
    text = POINTWISE_FILE.read_text(encoding="utf-8").replace(
        "      anchor: The answer is wrong or would ruin the dish.\n",
        "      anchor: The answer is wrong or would ruin the dish.\n      anchor: again\n",
    )
    (error,) = _parse_errors(text)
    assert "'anchor' appears twice in one mapping (first on line" in error
    assert error.startswith("(yaml) line ")


def test_yaml_merge_keys_may_be_overridden():
    text = (
        "rubric: merged\n"
        "criteria:\n"
        "- &base {key: a, scale: {type: binary, levels: [{value: 0, anchor: n}, "
        "{value: 1, anchor: y}]}}\n"
        "- <<: *base\n"
        "  key: b\n"
    )
    assert [c["key"] for c in yaml_io.parse(text)["criteria"]] == ["a", "b"]


def test_an_empty_file_says_so():
    assert _parse_errors("") == ["(yaml): the file is empty"]
    assert _parse_errors("# only a comment\n") == ["(yaml): the file is empty"]


def test_yaml_booleans_as_binary_values_are_refused_with_the_path():
    text = POINTWISE_FILE.read_text(encoding="utf-8")
    text = text.replace("    - value: 0\n", "    - value: no\n")
    assert "criteria[1].scale.levels[0].value: a number, not false" in _parse_errors(text)


def test_dump_writes_multi_line_text_as_literal_blocks():
    content = content_mod.validate(_pointwise())
    text = yaml_io.dump(content)
    assert "  user: |-\n    ## Task being judged\n" in text


# --- the example files and the round trip ----------------------------------------------------

@pytest.mark.parametrize("path", [POINTWISE_FILE, PAIRWISE_FILE], ids=["pointwise", "pairwise"])
def test_example_files_are_valid_as_they_are(path):
    content = yaml_io.parse(path.read_text(encoding="utf-8"))
    assert content["mode"] == ("pairwise" if path == PAIRWISE_FILE else "pointwise")


@pytest.mark.parametrize("path", [POINTWISE_FILE, PAIRWISE_FILE], ids=["pointwise", "pairwise"])
def test_example_files_are_in_canonical_export_form(path):
    text = path.read_text(encoding="utf-8")
    assert yaml_io.dump(yaml_io.parse(text)) == text


@pytest.mark.django_db
@pytest.mark.parametrize("path", [POINTWISE_FILE, PAIRWISE_FILE], ids=["pointwise", "pairwise"])
def test_round_trip_export_import_into_another_project_export_is_identical(path):
    first, second = ProjectFactory(), ProjectFactory()
    content = yaml_io.parse(path.read_text(encoding="utf-8"))
    _, v1, _ = rubric_import(project=first, content=content, publish=True, note="from file")
    exported = yaml_io.dump(version_content(v1))
    _, v2, _ = rubric_import(project=second, content=yaml_io.parse(exported), publish=True,
                             note="copied")
    assert yaml_io.dump(version_content(v2)) == exported
    assert v2.content_hash == v1.content_hash


@pytest.mark.django_db
def test_round_trip_keeps_text_typed_with_odd_characters():
    content = content_mod.validate(_pointwise())
    content["description"] = "Quotes \" and ' and colons: here\n  indented line\n# not a comment"
    content["criteria"][0]["scale"]["levels"][0]["anchor"] = "- looks like a list: yes"
    content["criteria"][1]["description"] = "Ünïcödé ✓ and {braces}"
    content = content_mod.validate(content)
    project_a, project_b = ProjectFactory(), ProjectFactory()
    _, v1, _ = rubric_import(project=project_a, content=content, publish=True, note="n")
    exported = yaml_io.dump(version_content(v1))
    _, v2, _ = rubric_import(project=project_b, content=yaml_io.parse(exported), publish=True,
                             note="n")
    assert version_content(v2)["description"] == content["description"]
    assert yaml_io.dump(version_content(v2)) == exported
