"""Reading a judge's answer (untrusted text) and combining K answers into one verdict.

Pure functions: no database, no provider. An answer becomes a value only when it holds a JSON
object whose "value" is one of the criterion's allowed values; anything else is a ParseError
(which the executor stores as an invalid row, never a score).
"""

from __future__ import annotations

import json

import pytest

from apps.judging.verdicts import (
    INCONSISTENT,
    ParseError,
    combine,
    extract_object,
    pairwise_sample_value,
    parse_verdict,
    storable,
    swap_value,
)
from apps.rubrics import scales

ORDINAL = {"key": "correct", "scale": {"type": "ordinal", "levels": [
    {"value": i, "anchor": f"level {i}"} for i in range(1, 6)]}}
BINARY = {"key": "safe", "scale": {"type": "binary", "levels": [
    {"value": 0, "anchor": "unsafe"}, {"value": 1, "anchor": "safe"}]}}
CATEGORICAL = {"key": "tone", "scale": {"type": "categorical", "levels": [
    {"value": "formal", "score": 1.0}, {"value": "casual", "score": 0.5},
    {"value": "rude", "score": 0.0}]}}
PAIRWISE = {"key": "overall", "scale": {"type": "pairwise",
                                        "levels": scales.default_levels(scales.PAIRWISE)}}


# -- reading one answer -----------------------------------------------------------------------
def test_a_plain_json_answer_is_read():
    assert parse_verdict('{"value": 4, "rationale": "Mostly right."}', ORDINAL) == (
        4, "Mostly right.")


def test_a_fenced_answer_is_read():
    text = 'Sure! Here it is:\n```json\n{"value": 2, "rationale": "Thin."}\n```\nAnything else?'
    assert parse_verdict(text, ORDINAL) == (2, "Thin.")


def test_a_fence_without_language_is_read():
    assert parse_verdict('```\n{"value": 5}\n```', ORDINAL) == (5, "")


def test_prose_before_and_after_the_object_is_ignored():
    text = 'Let me think. The answer is fine.\n{"rationale": "ok", "value": 3}\nHope it helps.'
    assert parse_verdict(text, ORDINAL) == (3, "ok")


def test_braces_in_the_prose_do_not_hide_the_object():
    text = ('Weighing {accuracy} against {style}, and the format {"value": <n>} asked for: '
            '{"value": 3, "rationale": "fine"}')
    assert parse_verdict(text, ORDINAL) == (3, "fine")


def test_two_objects_with_different_verdicts_are_refused():
    with pytest.raises(ParseError) as caught:
        parse_verdict('First {"value": 2}. On reflection {"value": 5}.', ORDINAL)
    assert caught.value.kind == "json"


@pytest.mark.parametrize("text", [
    '{"value": 4, "rationale": "ok",}',
    '{"value": 4, "rationale": "ok",\n}',
    '```json\n{"rationale": "ok", "value": 4,}\n```',
    'Verdict: {"value": 4, "rationale": "ok",} done',
])
def test_trailing_commas_are_forgiven(text):
    assert parse_verdict(text, ORDINAL)[0] == 4


@pytest.mark.parametrize("text", [
    '{"rationale": "I would say four."}',
    '{"verdict": {"value": 4}}',
])
def test_an_object_without_value_is_a_json_error(text):
    with pytest.raises(ParseError) as caught:
        parse_verdict(text, ORDINAL)
    assert caught.value.kind == "json"
    assert '"value"' in str(caught.value)


@pytest.mark.parametrize("text", ["", "   ", "I think the answer is good.", "[4]", "4",
                                  '"4"', "null", '{"value": 4', "{value: 4}"])
def test_text_without_a_json_object_is_a_json_error(text):
    with pytest.raises(ParseError) as caught:
        parse_verdict(text, ORDINAL)
    assert caught.value.kind == "json"


@pytest.mark.parametrize("value", [0, 6, 7, -1, 4.5, "five", None, [4], {"v": 4}, "4.5", "NaN"])
def test_a_value_outside_the_scale_is_a_scale_error_never_a_score(value):
    with pytest.raises(ParseError) as caught:
        parse_verdict(json.dumps({"value": value, "rationale": "x"}), ORDINAL)
    assert caught.value.kind == "scale"


def test_a_number_in_a_string_is_read_for_an_ordinal_scale():
    assert parse_verdict('{"value": "4"}', ORDINAL)[0] == 4
    assert parse_verdict('{"value": " 2 "}', ORDINAL)[0] == 2
    assert parse_verdict('{"value": 3.0}', ORDINAL)[0] == 3


def test_binary_accepts_yes_and_no_words():
    assert parse_verdict('{"value": "yes"}', BINARY)[0] == 1
    assert parse_verdict('{"value": "No"}', BINARY)[0] == 0
    with pytest.raises(ParseError):
        parse_verdict('{"value": 2}', BINARY)


def test_categories_match_without_case_but_exactly():
    assert parse_verdict('{"value": "Formal"}', CATEGORICAL)[0] == "formal"
    with pytest.raises(ParseError) as caught:
        parse_verdict('{"value": "polite"}', CATEGORICAL)
    assert caught.value.kind == "scale"


@pytest.mark.parametrize("raw,value", [("Tie", "tie"), ("TIE", "tie"), ("a", "A"), ("b", "B"),
                                       (" A ", "A")])
def test_pairwise_answers_are_read_in_any_case(raw, value):
    assert parse_verdict(json.dumps({"value": raw}), PAIRWISE)[0] == value


@pytest.mark.parametrize("raw", ["C", "A>B", "both", 1, "response A"])
def test_pairwise_answers_outside_a_b_tie_are_refused(raw):
    with pytest.raises(ParseError):
        parse_verdict(json.dumps({"value": raw}), PAIRWISE)


def test_an_answer_in_the_swapped_order_is_mapped_back_to_the_items_terms():
    # Asked (B, A): "A" there means the item's response B.
    assert parse_verdict('{"value": "A"}', PAIRWISE, swapped=True)[0] == "B"
    assert parse_verdict('{"value": "b"}', PAIRWISE, swapped=True)[0] == "A"
    assert parse_verdict('{"value": "tie"}', PAIRWISE, swapped=True)[0] == "tie"
    assert swap_value("A") == "B" and swap_value("tie") == "tie"


def test_a_rationale_that_is_not_text_is_kept_as_json_text_and_capped():
    value, rationale = parse_verdict('{"value": 1, "rationale": ["a", 2]}', ORDINAL)
    assert rationale == '["a", 2]'
    _, long = parse_verdict(json.dumps({"value": 1, "rationale": "x" * 10_000}), ORDINAL)
    assert len(long) == 4000


@pytest.mark.parametrize("text", [
    "[" * 100_000,
    "{" * 50_000 + "}" * 50_000,
    '{"value": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"a":' * 50_000 + "1" + "}" * 50_000,
    "x{" * 100_000,
    "```" * 10_000,
])
def test_deeply_nested_or_recursive_junk_is_an_error_not_a_crash(text):
    with pytest.raises(ParseError):
        parse_verdict(text, ORDINAL)


HUGE = "9" * 5_000


@pytest.mark.parametrize("text,kind", [
    ('{"value": ' + HUGE + "}", "scale"),                     # over Python's 4,300-digit limit
    ('{"value": -' + HUGE + ', "rationale": "x"}', "scale"),
    ('{"value": "' + HUGE + '"}', "scale"),
    ('{"value": 1e400}', "scale"),
    ('{"value": NaN}', "scale"),
    ('{"value": Infinity}', "scale"),
    ('{"value": -Infinity}', "scale"),
    ('{"value": [[[3]]]}', "scale"),
    ('{"value": {"a": [1, {"b": 2}]}}', "scale"),
    ('{"value": null}', "scale"),
    ('{"value": ""}', "scale"),
    ("[" + '{"value": 3}' + "]", "json"),                      # an array is not a verdict object
    ('[{"value": 3, "rationale": "fine"},]', "json"),
    ('```json\n[{"value": 3}]\n```', "json"),
    ("[3]", "json"),
    ('"{\\"value\\": 3}"', "json"),                          # a JSON string holding an object
    ("3", "json"),
    ("null", "json"),
    ("true", "json"),
    ("\x00", "json"),
    ('{"value": 3' + " " * 100 + "\x00}", "json"),
])
def test_odd_answers_are_parse_errors_with_a_short_storable_reason(text, kind):
    with pytest.raises(ParseError) as caught:
        parse_verdict(text, ORDINAL)
    assert caught.value.kind == kind
    message = str(caught.value)
    assert len(message) <= 501 and "\x00" not in message
    message.encode("utf-8")  # no lone surrogates


def test_a_huge_integer_anywhere_else_in_the_object_does_not_stop_the_verdict():
    value, rationale = parse_verdict('{"value": 4, "rationale": {"n": ' + HUGE + "}}", ORDINAL)
    assert value == 4 and rationale.startswith('{"n": ')


@pytest.mark.parametrize("text", [
    '{"value": 3, "rationale": "bad \\u0000 byte"}',            # escaped NUL in the JSON
    '{"value": 3, "rationale": "bad \x00 byte"}',                # a raw NUL inside the string
    '{"value": 3, "rationale": "lone \\ud800 surrogate"}',
    '{"value": 3, "rationale": "lone \ud800 surrogate"}',
])
# Raw control characters inside strings are read (a model's raw newline is not an error).
def test_nul_and_lone_surrogates_never_reach_a_stored_rationale(text):
    value, rationale = parse_verdict(text, ORDINAL)
    assert value == 3
    assert "\x00" not in rationale
    rationale.encode("utf-8")
    assert "\ufffd" in rationale


def test_storable_replaces_only_what_cannot_be_stored():
    assert storable("a\x00b\ud800c\U0001F600") == "a\ufffdb\ufffdc\U0001F600"
    assert storable("plain ✓") == "plain ✓"


def test_a_ten_megabyte_answer_is_read_or_refused_quickly():
    import time

    big = json.dumps({"value": 2, "rationale": "y" * 10_000_000})
    began = time.perf_counter()
    assert parse_verdict(big, ORDINAL)[0] == 2
    junk = "no verdict here { " * 600_000
    with pytest.raises(ParseError):
        parse_verdict(junk, ORDINAL)
    assert time.perf_counter() - began < 10


@pytest.mark.parametrize("raw", [10 ** 4000, -(10 ** 4000), float("nan"), float("inf"),
                                 [[[[[[1]]]]]], {"a": 1}, "x" * 10_000_000, "\x00", object()])
@pytest.mark.parametrize("criterion", [ORDINAL, BINARY, CATEGORICAL, PAIRWISE])
def test_coerce_value_refuses_anything_odd_with_a_short_value_error(raw, criterion):
    with pytest.raises(ValueError) as caught:
        scales.coerce_value(criterion["scale"], raw)
    assert len(str(caught.value)) < 300


def test_a_nested_verdict_does_not_count_as_the_value():
    with pytest.raises(ParseError) as caught:
        parse_verdict('{"value": {"value": 3}}', ORDINAL)
    assert caught.value.kind == "scale"


def test_extract_object_returns_the_object():
    assert extract_object('noise {"value": "A", "rationale": "r"} noise') == {
        "value": "A", "rationale": "r"}


# -- combining K samples ----------------------------------------------------------------------
@pytest.mark.parametrize("values,expected,mean", [
    ([3, 3, 3], 3, 3.0),
    ([2, 3], 3, 2.5),           # a half rounds up
    ([1, 2], 2, 1.5),
    ([3, 4, 4], 4, 11 / 3),     # 3.67 -> 4
    ([1, 1, 2], 1, 4 / 3),      # 1.33 -> 1
    ([1, 5], 3, 3.0),
])
def test_ordinal_samples_combine_to_the_mean_rounded_half_up(values, expected, mean):
    value, got_mean, _, flag = combine(ORDINAL["scale"], values)
    assert value == expected
    assert got_mean == pytest.approx(mean)
    assert flag == ""


def test_ordinal_spread_is_the_population_standard_deviation():
    _, _, spread, _ = combine(ORDINAL["scale"], [1, 5])
    assert spread == pytest.approx(2.0)
    _, _, spread, _ = combine(ORDINAL["scale"], [4, 4, 4])
    assert spread == 0.0
    _, mean, spread, _ = combine(ORDINAL["scale"], [2, 3, 4])
    assert (mean, spread) == (3.0, pytest.approx((2 / 3) ** 0.5))


def test_binary_samples_combine_by_mean_and_half_rounds_up():
    assert combine(BINARY["scale"], [0, 1])[0] == 1
    assert combine(BINARY["scale"], [0, 0, 1])[0] == 0


def test_categorical_samples_take_the_majority_with_the_disagreeing_share_as_spread():
    value, mean, spread, flag = combine(CATEGORICAL["scale"], ["casual", "formal", "casual"])
    assert (value, mean, flag) == ("casual", None, "")
    assert spread == pytest.approx(1 / 3)


def test_a_categorical_split_goes_to_the_first_class_in_scale_order_and_is_flagged():
    value, _, spread, flag = combine(CATEGORICAL["scale"], ["rude", "formal"])
    assert (value, flag) == ("formal", "split")
    assert spread == pytest.approx(0.5)


def test_pairwise_split_between_a_and_b_is_a_flagged_tie():
    value, _, spread, flag = combine(PAIRWISE["scale"], ["A", "B"])
    assert (value, flag) == ("tie", "split")
    assert spread == 1.0


def test_pairwise_orders_that_agree_give_the_answer_and_disagreeing_ones_inconsistent():
    assert pairwise_sample_value("A", "A") == "A"
    assert pairwise_sample_value("tie", "tie") == "tie"
    assert pairwise_sample_value("A", "B") == INCONSISTENT
    assert pairwise_sample_value("A", "tie") == INCONSISTENT


def test_an_inconsistent_pairwise_sample_counts_as_tie_and_flags_the_verdict():
    value, _, spread, flag = combine(PAIRWISE["scale"], [INCONSISTENT])
    assert (value, flag, spread) == ("tie", INCONSISTENT, 0.0)
    value, _, _, flag = combine(PAIRWISE["scale"], ["A", "A", INCONSISTENT])
    assert (value, flag) == ("A", INCONSISTENT)


def test_combining_nothing_is_an_error():
    with pytest.raises(ValueError):
        combine(ORDINAL["scale"], [])
