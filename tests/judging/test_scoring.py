"""From verdicts to a reward (apps/judging/scoring.py), the function the app and reward.py share:
invalid samples dropped, K samples combined, the weighted mean computed exactly."""

from __future__ import annotations

from fractions import Fraction

import pytest

from apps.judging import scoring
from apps.rubrics import scales


def ordinal(n: int) -> dict:
    return {"type": "ordinal", "levels": [{"value": i, "anchor": f"l{i}"}
                                          for i in range(1, n + 1)]}


THREE = [{"key": k, "weight": w, "scale": ordinal(4)}
         for k, w in (("a", 0.5), ("b", 1), ("c", 1))]


def test_labels_4_3_2_with_weights_half_one_one_are_exactly_three_fifths_and_pass_at_0_6():
    # Summed in floating point this is 0.5999999999999999 and fails a 0.6 threshold.
    reward = scoring.weighted_reward(THREE, {"a": 4, "b": 3, "c": 2})
    assert reward == Fraction(3, 5)
    assert scoring.passes(reward, 0.6)
    assert not scoring.passes(reward, 0.61)


def test_equal_rewards_are_equal_whatever_the_path_to_them():
    # (4, 3, 2) and (2, 2, 4) are both 3/5; in floats they differ in the last bit.
    first = scoring.weighted_reward(THREE, {"a": 4, "b": 3, "c": 2})
    second = scoring.weighted_reward(THREE, {"a": 2, "b": 2, "c": 4})
    assert first == second and float(first) == float(second) == 0.6


def test_weights_and_category_scores_count_as_written():
    scale = {"type": "categorical", "levels": [{"value": "x", "score": 0.1},
                                               {"value": "y", "score": 0.7}]}
    criteria = [{"key": "k", "weight": 0.1, "scale": scale},
                {"key": "m", "weight": 0.2, "scale": scale}]
    assert scoring.weighted_reward(criteria, {"k": "x", "m": "y"}) == Fraction(1, 2)


def test_invalid_samples_are_dropped_and_the_rest_combined():
    scale = ordinal(5)
    assert scoring.criterion_verdict(scale, [4, None, 5])[0] == 5  # mean 4.5, halves up
    assert scoring.criterion_verdict(scale, [None, 2, None])[::4] == (2, 1)
    assert scoring.criterion_verdict(scale, [None, None]) is None
    assert scoring.criterion_verdict(scale, []) is None


def test_a_completion_is_scored_when_each_weighted_criterion_has_one_valid_sample():
    criteria = [*THREE, {"key": "note", "weight": 0, "scale": ordinal(4)}]
    reward, values, missing = scoring.completion_reward(
        criteria, {"a": [None, 4, None], "b": [3, None, 3], "c": [2, 2, None], "note": []})
    assert reward == Fraction(3, 5) and values == {"a": 4, "b": 3, "c": 2}
    assert missing == []
    reward, values, missing = scoring.completion_reward(
        criteria, {"a": [None, None, None], "b": [3], "c": [2]})
    assert reward is None and missing == ["a"] and values == {"b": 3, "c": 2}


def test_a_pairwise_sample_needs_both_orders():
    assert scoring.pairwise_sample("A", None) is None
    assert scoring.pairwise_sample(None, "A") is None
    assert scoring.pairwise_sample("A", "A") == "A"
    assert scoring.pairwise_sample("A", "B") == "inconsistent"
    pairwise = {"type": "pairwise", "levels": []}
    samples = [scoring.pairwise_sample("A", "A"), scoring.pairwise_sample("B", None)]
    reward, values, _ = scoring.completion_reward(
        [{"key": "p", "weight": 1, "scale": pairwise}], {"p": samples})
    assert values == {"p": "A"} and reward == 1


def test_no_weighted_criterion_gives_no_reward():
    assert scoring.weighted_reward([{"key": "a", "weight": 0, "scale": ordinal(3)}],
                                   {"a": 2}) is None


@pytest.mark.parametrize("number, expected", [
    (0.1, Fraction(1, 10)), (1, Fraction(1)), (0.6, Fraction(3, 5)),
    (Fraction(2, 7), Fraction(2, 7)),
])
def test_exact_reads_numbers_as_written(number, expected):
    assert scales.exact(number) == expected


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True, "0.5", None])
def test_exact_refuses_what_is_not_a_finite_number(bad):
    with pytest.raises((TypeError, ValueError)):
        scales.exact(bad)
