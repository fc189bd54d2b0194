"""OpenAI-style grader JSON from an export, validated by constructing openai-python's
`openai.types.graders` models plus our own checks (`grader_problems`), since the SDK accepts
unknown keys and types `multi.graders` as a single grader rather than a mapping."""

from __future__ import annotations

import json
import re

import pytest
from openai.types.graders import LabelModelGrader, MultiGrader, ScoreModelGrader

from apps.exports.openai_grader import grader_problems
from apps.exports.services import judge_export
from apps.judging.models import JudgeRun, RunKind, RunStatus
from apps.rubrics import content as content_mod
from apps.rubrics.services import rubric_import
from tests.factories import DatasetFactory, ItemFactory
from tests.judging.helpers import PAIRWISE, POINTWISE

pytestmark = pytest.mark.django_db
TAG_RE = re.compile(r"\{\{(.*?)\}\}")
SINGLE = {
    "rubric": "concise", "name": "Concise", "mode": "pointwise",
    "description": "Short answers.",
    "criteria": [
        {"key": "concise", "weight": 1, "scale": {"type": "binary", "levels": [
            {"value": 0, "anchor": "rambles"}, {"value": 1, "anchor": "to the point"}]}},
        {"key": "tone", "weight": 0, "scale": {"type": "categorical", "levels": [
            {"value": "warm"}, {"value": "cold"}]}},
    ],
}


def grader_document(project, content: dict, *, references: list[str] = (),
                    again: bool = False) -> dict:
    """The OpenAI export of an imported judge (on a dataset whose items carry `references`),
    every grader in it validated with the SDK's types; `again` returns two exports."""
    _, version, _ = rubric_import(project=project, content=content_mod.validate(content),
                                  publish=True, note="v1")
    dataset = DatasetFactory(project=project, name=content["rubric"], kind=content["mode"])
    for reference in references:
        ItemFactory(dataset=dataset, reference=reference)
    run = JudgeRun.objects.create(project=project, rubric_version=version, dataset=dataset,
                                  name="gpt-4.1-mini", kind=RunKind.IMPORTED,
                                  status=RunStatus.COMPLETED, model="gpt-4.1-mini")
    documents = []
    for _ in range(2 if again else 1):
        export = judge_export(run=run, fmt="openai", force=True)
        assert export.filename.endswith(".openai.json")
        documents.append(validated(json.loads(bytes(export.artifact))))
    return documents if again else documents[0]


def validated(document: dict) -> dict:
    """Every grader of an export through openai-python's types. The SDK types a multi
    grader's `graders` as one grader, not our named mapping (docs/exports.md): its envelope is
    validated with one sub-grader in that place, and each sub-grader on its own."""
    grader = document["grader"]
    subs = grader["graders"].values() if grader["type"] == "multi" else [grader]
    if grader["type"] == "multi":
        MultiGrader.model_validate({**grader, "graders": next(iter(subs))})
    for sub in subs:
        ScoreModelGrader.model_validate(sub)
        assert grader_problems(sub) == []
    if document["label_grader"] is not None:
        LabelModelGrader.model_validate(document["label_grader"])
    return document


def messages_of(document: dict) -> list[str]:
    grader = document["grader"]
    graders = list(grader["graders"].values()) if grader["type"] == "multi" else [grader]
    if document["label_grader"]:
        graders.append(document["label_grader"])
    return [m["content"] for g in graders for m in g["input"]]


def template_tags(grader: dict) -> set[str]:
    return {tag.strip() for message in grader["input"]
            for tag in TAG_RE.findall(message["content"])}


def validate_score_model(grader: dict) -> ScoreModelGrader:
    model = ScoreModelGrader.model_validate(grader)
    assert model.range == [0, 1]
    assert [m.role for m in model.input] == ["system", "user"]
    assert template_tags(grader) <= {"item.prompt", "item.reference", "sample.output_text"}
    assert "sample.output_text" in template_tags(grader)
    return model


def test_single_weighted_criterion_is_a_score_model(personas):
    document = grader_document(personas.project, SINGLE)
    grader = document["grader"]
    assert grader["type"] == "score_model" and document["label_grader"] is None
    validate_score_model(grader)
    assert grader["model"] == "gpt-4.1-mini"
    user = grader["input"][1]["content"]
    assert "{{item.prompt}}" in user and "{{sample.output_text}}" in user
    assert "to the point" in user  # the rubric's anchors are in the prompt
    assert "0 (No) -> 0, 1 (Yes) -> 1" in user or "0 -> 0, 1 -> 1" in user
    assert grader_problems(grader) == []
    assert document["rubriclab"]["status"] == "UNCALIBRATED"


def test_weighted_criteria_are_a_multi_grader_with_the_weights_in_its_formula(personas):
    document = grader_document(personas.project, POINTWISE)
    grader = document["grader"]
    assert grader["type"] == "multi"
    # The SDK types `graders` as one grader: validate the envelope with one of them in its
    # place, then every sub-grader on its own.
    subs = grader["graders"]
    envelope = MultiGrader.model_validate({**grader, "graders": next(iter(subs.values()))})
    assert envelope.calculate_output == grader["calculate_output"]
    assert set(subs) == {"correct", "clear"}
    for key, sub in subs.items():
        assert sub["name"] == key
        validate_score_model(sub)
        assert "Levels and scores: 1 -> 0, 2 -> 0.25, 3 -> 0.5, 4 -> 0.75, 5 -> 1." in \
            sub["input"][1]["content"]
    # The formula is the weighted mean of the criterion scores (weights 2 and 1).
    for correct, clear in ((1, 0), (0, 1), (0.5, 0.25), (1, 1)):
        value = eval(grader["calculate_output"], {"__builtins__": {}},  # noqa: S307
                     {"correct": correct, "clear": clear})
        assert value == pytest.approx((2 * correct + clear) / 3)
    assert grader_problems(grader) == []


def test_pairwise_is_a_score_model_against_the_reference_and_a_label_model(personas):
    document = grader_document(personas.project, PAIRWISE)
    grader = document["grader"]
    assert grader["type"] == "score_model"
    validate_score_model(grader)
    assert {"item.reference", "sample.output_text"} <= template_tags(grader)
    assert "1 if A is better, 0.5 if neither is clearly better, 0 if B is better" in \
        grader["input"][1]["content"]
    label = document["label_grader"]
    model = LabelModelGrader.model_validate(label)
    assert set(model.passing_labels) <= set(model.labels)
    assert template_tags(label) <= {"item.prompt", "item.reference", "sample.output_text"}
    assert grader_problems(grader) == [] and grader_problems(label, "label_grader") == []


def test_our_checks_catch_what_the_sdk_lets_through():
    message = [{"role": "user", "content": "{{ item.prompt }} {{sample.output_text}} {{foo.x}}"}]
    score = {"type": "score_model", "name": "s", "model": "m", "input": message,
             "range": [1]}
    ScoreModelGrader.model_validate(score)  # the SDK is content with both problems
    problems = grader_problems(score)
    assert any("namespace 'foo'" in p for p in problems)
    assert any("range" in p for p in problems)
    label = {"type": "label_model", "name": "l", "model": "m", "input": message[:0],
             "labels": ["good", "bad"], "passing_labels": ["good", "great"]}
    LabelModelGrader.model_validate(label)
    assert grader_problems(label) == ["grader.passing_labels: must be among labels"]
    good = {**score, "input": [{"role": "user", "content": "{{sample.output_text}}"}],
            "range": [0, 1]}
    multi = {"type": "multi", "name": "m", "graders": {"a": good, "b": good},
             "calculate_output": "(2 * a + c) / 3"}
    assert any("calculate_output" in p for p in grader_problems(multi))
    assert grader_problems({**multi, "calculate_output": "(2 * a + b) / 3"}) == []


def test_criterion_keys_that_are_not_formula_names_still_make_a_valid_multi_grader(personas):
    """Keys may hold '-' and start with a digit: the formula must not read 'follows-format' as
    a subtraction. Each gets a formula name; the sub-grader's name stays the criterion key."""
    ordinal = {"type": "ordinal", "levels": [{"value": i, "anchor": f"level {i}"}
                                             for i in range(1, 4)]}
    content = {
        "rubric": "keys", "name": "Keys", "mode": "pointwise",
        "criteria": [
            {"key": "follows-format", "weight": 3, "scale": ordinal,
             "description": "Example: 'Boil for 7 minutes.' is level 3."},
            {"key": "follows_format", "weight": 1, "scale": ordinal},
            {"key": "2nd-turn", "weight": 2, "scale": ordinal},
        ],
    }
    grader = grader_document(personas.project, content)["grader"]
    assert grader["type"] == "multi"
    assert grader_problems(grader) == []
    subs = grader["graders"]
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) for name in subs)
    by_key = {sub["name"]: name for name, sub in subs.items()}
    assert set(by_key) == {"follows-format", "follows_format", "2nd-turn"}
    assert len(set(by_key.values())) == 3  # 'follows-format' and 'follows_format' kept apart
    for sub in subs.values():
        validate_score_model(sub)
    # The few-shot text of a criterion's description reaches its grader's messages.
    assert "'Boil for 7 minutes.' is level 3" in \
        subs[by_key["follows-format"]]["input"][1]["content"]
    scores = {by_key["follows-format"]: 1.0, by_key["follows_format"]: 0.0,
              by_key["2nd-turn"]: 0.5}
    value = eval(grader["calculate_output"], {"__builtins__": {}}, scores)  # noqa: S307
    assert value == pytest.approx((3 * 1.0 + 1 * 0.0 + 2 * 0.5) / 6)


FENCE_RE = re.compile(r"<<<(PROMPT|RESPONSE|RESPONSE_A|RESPONSE_B|REFERENCE) ([0-9a-f]{10})>>>")


def test_fence_ids_are_drawn_per_export_so_a_trained_model_cannot_close_them(personas):
    first, second = grader_document(personas.project, POINTWISE, again=True)
    # The fields that hold template variables (the empty reference fence is the calibrated
    # prompt's own, hashed from "").
    ids = [{(m.group(1), m.group(2)) for t in messages_of(d) for m in FENCE_RE.finditer(t)
            if m.group(1) != "REFERENCE"} for d in (first, second)]
    assert {name for name, _ in ids[0]} == {"PROMPT", "RESPONSE"}
    # One id per field within an export (every sub-grader the same), another in the next.
    assert len(ids[0]) == 2
    assert not {i for _, i in ids[0]} & {i for _, i in ids[1]}
    for text in messages_of(first):
        if "{{sample.output_text}}" in text:
            [marker] = [i for name, i in ids[0] if name == "RESPONSE"]
            assert (f"<<<RESPONSE {marker}>>>\n{{{{sample.output_text}}}}\n"
                    f"<<<END RESPONSE {marker}>>>") in text


def test_a_pointwise_grader_names_the_reference_only_when_the_rubric_uses_one(personas):
    # The default prompt has a reference section; without references in the calibration data
    # it was judged empty, so the grader keeps it empty and needs no item.reference.
    without = grader_document(personas.project, POINTWISE)
    assert not any("{{item.reference}}" in t for t in messages_of(without))
    assert all("<<<REFERENCE " in t for t in messages_of(without) if "Reference answer" in t)
    with_refs = grader_document(personas.project, {**POINTWISE, "rubric": "with-refs"},
                                references=["Nine minutes.", ""])
    assert any("{{item.reference}}" in t for t in messages_of(with_refs))
    no_section = {**POINTWISE, "rubric": "no-section",
                  "prompt": {"user": "Judge {{ response }} to {{ prompt }}.\n{{ criterion }}"}}
    custom = grader_document(personas.project, no_section, references=["Nine minutes."])
    assert all("{{item.reference}}" not in t for t in messages_of(custom))
    pairwise = grader_document(personas.project, PAIRWISE)
    assert any("{{item.reference}}" in t for t in messages_of(pairwise))
