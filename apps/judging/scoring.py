"""From verdicts to a reward: the one implementation that the app (judge runs' verdicts, the
calibration report's reward-level figures) and the exported reward.py share.

Standard library only: reward.py embeds this module's source beside scales.py, prompting.py and
verdicts.py, so a trainer's rewards are computed by exactly this code.

The life of a completion's reward:
1. Each criterion's samples: a sample that gave no verdict (an unreadable answer, a call that
   failed; for pairwise, either of its two orders) is None and is dropped; the valid ones are
   combined by verdicts.combine (mean rounded to a level, or majority).
2. A criterion with no valid sample has no verdict.
3. The reward is the weighted mean of the criterion scores over the criteria with weight > 0,
   computed exactly (fractions, from the numbers as written: weight 0.5 is 1/2, a category's
   score 0.3 is 3/10), so equal rewards are equal and 3/5 passes a threshold of 0.6. A
   completion has a reward only when every weighted criterion has a verdict.
4. Pass or fail compares the exact reward with the exact threshold.
"""

from __future__ import annotations

from fractions import Fraction

from apps.judging import verdicts
from apps.rubrics import scales


def pairwise_sample(ab, ba):
    """One pairwise sample from its two orders (values in A's terms, None = no verdict)."""
    if ab is None or ba is None:
        return None
    return verdicts.pairwise_sample_value(ab, ba)


def criterion_verdict(scale: dict, samples: list):
    """(value, mean, spread, flag, valid samples) from a criterion's samples, None standing for
    a sample without a verdict; None when no sample is valid."""
    valid = [value for value in samples if value is not None]
    if not valid:
        return None
    value, mean, spread, flag = verdicts.combine(scale, valid)
    return value, mean, spread, flag, len(valid)


def weighted(criteria: list[dict]) -> list[dict]:
    """The criteria that carry weight (the ones a reward is made of)."""
    return [c for c in criteria if scales.exact(c["weight"]) > 0]


def weighted_reward(criteria: list[dict], values: dict) -> Fraction | None:
    """The weighted mean of the criterion scores, exactly; None when a weighted criterion has
    no value (or no criterion carries weight). `values` maps criterion key -> value."""
    parts = weighted(criteria)
    if not parts or any(values.get(c["key"]) is None for c in parts):
        return None
    total = sum(scales.exact(c["weight"]) for c in parts)
    score = sum(scales.exact(c["weight"]) * scales.score_fraction(c["scale"], values[c["key"]])
                for c in parts)
    return score / total


def completion_reward(criteria: list[dict], samples: dict) -> tuple:
    """(reward or None, {key: combined value}, [weighted keys without a verdict]) from the
    samples of each criterion (`samples` maps key -> list of values or None)."""
    values = {}
    for criterion in criteria:
        verdict = criterion_verdict(criterion["scale"], samples.get(criterion["key"]) or [])
        if verdict is not None:
            values[criterion["key"]] = verdict[0]
    missing = [c["key"] for c in weighted(criteria) if c["key"] not in values]
    return weighted_reward(criteria, values), values, missing


def passes(reward: Fraction, threshold) -> bool:
    """Whether a reward reaches the pass threshold, compared exactly."""
    return reward >= scales.exact(threshold)
