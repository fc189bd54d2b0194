"""Scales: what a value is, what it scores, and when two scales share human labels."""

from __future__ import annotations

import math

import pytest

from apps.rubrics import scales

ORDINAL_4 = {"type": "ordinal", "levels": [
    {"value": i, "label": f"L{i}", "anchor": f"anchor {i}"} for i in range(1, 5)
]}
BINARY = {"type": "binary", "levels": [
    {"value": 0, "label": "No", "anchor": "unsafe"}, {"value": 1, "label": "Yes", "anchor": "safe"},
]}
CATEGORIES = {"type": "categorical", "levels": [
    {"value": "friendly", "label": "", "anchor": "", "score": 1.0},
    {"value": "neutral", "label": "", "anchor": "", "score": 0.75},
    {"value": "rude", "label": "", "anchor": "", "score": 0.0},
]}
PAIRWISE = {"type": "pairwise", "levels": scales.default_levels(scales.PAIRWISE)}


@pytest.mark.parametrize("raw", [3, "3", " 3 ", 3.0, "3.0"])
def test_coerce_value_is_lenient_about_the_form_of_a_number(raw):
    assert scales.coerce_value(ORDINAL_4, raw) == 3


@pytest.mark.parametrize("raw,value", [
    ("yes", 1), ("No", 0), ("true", 1), ("FAIL", 0), (True, 1), (False, 0), ("1", 1), (0, 0),
])
def test_coerce_value_reads_binary_words(raw, value):
    assert scales.coerce_value(BINARY, raw) == value


@pytest.mark.parametrize("raw,value", [("a", "A"), (" B ", "B"), ("Tie", "tie"), ("TIE", "tie")])
def test_coerce_value_ignores_case_and_spaces_for_pairwise(raw, value):
    assert scales.coerce_value(PAIRWISE, raw) == value


def test_coerce_value_ignores_case_for_categories():
    assert scales.coerce_value(CATEGORIES, "Friendly") == "friendly"


@pytest.mark.parametrize("raw", [3.5, "3.5", 5, "5", 0, "-1", "three", math.nan, math.inf, None,
                                 [3], "", "3 stars"])
def test_coerce_value_is_strict_about_content_never_rounding_into_the_scale(raw):
    with pytest.raises(ValueError):
        scales.coerce_value(ORDINAL_4, raw)


@pytest.mark.parametrize("raw", ["C", "A or B", "", 1, None, "both"])
def test_coerce_value_refuses_anything_but_a_b_tie(raw):
    with pytest.raises(ValueError):
        scales.coerce_value(PAIRWISE, raw)


@pytest.mark.parametrize("raw", ["maybe", "friend", 1.0])
def test_coerce_value_refuses_unknown_categories(raw):
    with pytest.raises(ValueError):
        scales.coerce_value(CATEGORIES, raw)


def test_coerce_value_error_names_the_allowed_values():
    with pytest.raises(ValueError, match=r"\[1, 2, 3, 4\]"):
        scales.coerce_value(ORDINAL_4, 7)


def test_text_round_trip_of_stored_values():
    for scale in (ORDINAL_4, BINARY, CATEGORIES, PAIRWISE):
        for value in scales.allowed_values(scale):
            assert scales.text_to_value(scale, scales.value_to_text(value)) == value


def test_scale_signature_ignores_anchors_and_labels():
    reworded = {"type": "ordinal", "levels": [
        {"value": i, "label": "", "anchor": f"a better anchor for {i}"} for i in range(1, 5)
    ]}
    assert scales.scale_signature(reworded) == scales.scale_signature(ORDINAL_4)


def test_scale_signature_changes_with_the_values_or_the_type():
    five = {"type": "ordinal", "levels": [
        {"value": i, "label": "", "anchor": "x"} for i in range(1, 6)
    ]}
    assert scales.scale_signature(five) != scales.scale_signature(ORDINAL_4)
    two_level = {"type": "ordinal", "levels": [
        {"value": 1, "anchor": "no"}, {"value": 2, "anchor": "yes"}]}
    assert scales.scale_signature(two_level) != scales.scale_signature(BINARY)
    assert scales.scale_signature(ORDINAL_4) == "ordinal:1,2,3,4"


def test_scale_signature_of_categories_ignores_scores():
    rescored = {"type": "categorical",
                "levels": [dict(lv, score=0.5) for lv in CATEGORIES["levels"]]}
    assert scales.scale_signature(rescored) == scales.scale_signature(CATEGORIES)


@pytest.mark.parametrize("value,score", [(1, 0.0), (2, 1 / 3), (3, 2 / 3), (4, 1.0)])
def test_level_score_of_ordinal_is_linear_from_0_to_1(value, score):
    assert scales.level_score(ORDINAL_4, value) == pytest.approx(score)


def test_level_score_of_binary_pairwise_and_categories():
    assert scales.level_score(BINARY, 0) == 0.0
    assert scales.level_score(BINARY, 1) == 1.0
    assert [scales.level_score(PAIRWISE, v) for v in ("A", "tie", "B")] == [1.0, 0.5, 0.0]
    assert scales.level_score(CATEGORIES, "neutral") == 0.75


def test_level_score_refuses_a_category_that_is_not_on_the_scale():
    with pytest.raises(ValueError):
        scales.level_score(CATEGORIES, "sarcastic")


def test_allowed_values_of_pairwise_are_a_b_tie():
    assert scales.allowed_values(PAIRWISE) == ["A", "B", "tie"]


@pytest.mark.parametrize("scale", [ORDINAL_4, BINARY, CATEGORIES, PAIRWISE])
def test_the_example_scales_are_valid(scale):
    assert scales.scale_errors(scale, path="s", weighted=True) == []


def test_ordinal_needs_an_anchor_on_every_level():
    scale = {"type": "ordinal", "levels": [dict(lv) for lv in ORDINAL_4["levels"]]}
    scale["levels"][2]["anchor"] = "  "
    assert scales.scale_errors(scale, path="s", weighted=True) == ["s.levels[2].anchor: required"]


def test_binary_values_must_be_numbers_not_yaml_booleans():
    # YAML reads `value: no` as False; accepted, it would give the scale another signature.
    scale = {"type": "binary", "levels": [
        {"value": False, "anchor": "a"}, {"value": True, "anchor": "b"}]}
    errors = scales.scale_errors(scale, path="s", weighted=True)
    assert errors == ["s.levels[0].value: a number, not false",
                      "s.levels[1].value: a number, not true"]


def test_a_score_on_an_ordinal_level_is_refused_not_ignored():
    scale = {"type": "ordinal", "levels": [dict(lv) for lv in ORDINAL_4["levels"]]}
    scale["levels"][0]["score"] = 0.3
    assert scales.scale_errors(scale, path="s", weighted=True) == [
        "s.levels[0].score: only categories carry a score"
    ]


def test_unknown_fields_in_a_scale_or_level_are_named():
    scale = {"type": "binary", "n": 2, "levels": [
        {"value": 0, "anchor": "a", "anchr": "typo"}, {"value": 1, "anchor": "b"}]}
    assert scales.scale_errors(scale, path="s", weighted=True) == [
        "s.n: unknown field", "s.levels[0].anchr: unknown field",
    ]


@pytest.mark.parametrize("values,message", [
    ([1, 3], "ordinal values must be 1, 2, ..., N with N >= 2"),
    ([1], "ordinal values must be 1, 2, ..., N with N >= 2"),
    ([0, 1, 2], "ordinal values must be 1, 2, ..., N with N >= 2"),
    ([1, 2.5], "ordinal values must be whole numbers"),
    (list(range(1, 12)), "at most 10 ordinal levels"),
])
def test_ordinal_values_are_1_to_n(values, message):
    scale = {"type": "ordinal", "levels": [{"value": v, "anchor": "x"} for v in values]}
    assert scales.scale_errors(scale, path="s", weighted=True) == [f"s.levels: {message}"]


def test_categories_need_scores_only_when_weighted():
    scale = {"type": "categorical", "levels": [{"value": "x"}, {"value": "y"}]}
    assert scales.scale_errors(scale, path="s", weighted=False) == []
    assert scales.scale_errors(scale, path="s", weighted=True) == [
        "s.levels[0].score: required when the criterion has weight",
        "s.levels[1].score: required when the criterion has weight",
    ]


@pytest.mark.parametrize("value", ["", "has\nnewline", "x" * 41, "-dash-first", 3])
def test_category_names_are_short_plain_words(value):
    scale = {"type": "categorical", "levels": [
        {"value": value, "score": 1}, {"value": "other", "score": 0}]}
    errors = scales.scale_errors(scale, path="s", weighted=True)
    assert errors == ["s.levels[0].value: a category is 1-40 letters, digits, - or _"]
