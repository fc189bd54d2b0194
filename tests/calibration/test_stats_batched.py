"""The batched bootstrap (many judges' intervals at once) gives the one-by-one numbers; the
paired bootstrap of a kappa difference matches resampling with scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from apps.calibration.stats import (
    bootstrap_kappa_ci,
    bootstrap_kappa_cis,
    paired_kappa_difference,
)


def _pair(rng, n, k, agree):
    a = rng.integers(0, k, size=n)
    b = np.where(rng.random(n) < agree, a, rng.integers(0, k, size=n))
    return list(a), list(b)


def test_batched_intervals_equal_one_call_per_pair():
    rng = np.random.default_rng(2)
    jobs = []
    for n, k, weights in ((150, 5, "quadratic"), (150, 3, None), (80, 4, "linear"),
                          (150, 5, None), (7, 2, None)):
        a, b = _pair(rng, n, k, 0.6)
        jobs.append((a, b, list(range(k)), weights))
    jobs += [([1] * 40, [1] * 40, [0, 1], None), ([], [], [0, 1], None),
             ([0, 1] * 20, [0, 1] * 20, [0, 1], "quadratic"),
             (["x", "y", "z"] * 10, ["x", "y", "y"] * 10, ["x", "y"], None)]
    batched = bootstrap_kappa_cis(jobs, n_resamples=300, seed=5)
    for (a, b, labels, weights), got in zip(jobs, batched, strict=True):
        want = bootstrap_kappa_ci(a, b, labels=labels, weights=weights, n_resamples=300, seed=5)
        if math.isnan(want[0]):
            assert math.isnan(got[0]) and math.isnan(got[1])
        else:
            assert got == pytest.approx(want, abs=1e-12)


def test_batched_intervals_refuse_bad_arguments():
    with pytest.raises(ValueError):
        bootstrap_kappa_cis([([1], [1], [1], "cubic")])
    with pytest.raises(ValueError):
        bootstrap_kappa_cis([([1, 2], [1], [1, 2], None)])
    with pytest.raises(ValueError):
        bootstrap_kappa_cis([], level=1.5)


def test_paired_difference_matches_resampling_with_sklearn():
    rng = np.random.default_rng(9)
    ref = rng.integers(0, 3, size=120)
    good = np.where(rng.random(120) < 0.8, ref, rng.integers(0, 3, size=120))
    poor = np.where(rng.random(120) < 0.4, ref, rng.integers(0, 3, size=120))
    got = paired_kappa_difference(ref, good, poor, labels=[0, 1, 2], weights="quadratic",
                                  n_resamples=200, seed=4)
    draw = np.random.default_rng(4)
    diffs = []
    for _ in range(200):
        i = draw.integers(0, 120, size=120)
        diffs.append(cohen_kappa_score(ref[i], good[i], labels=[0, 1, 2], weights="quadratic")
                     - cohen_kappa_score(ref[i], poor[i], labels=[0, 1, 2],
                                         weights="quadratic"))
    assert got["ci95"] == pytest.approx(tuple(np.quantile(diffs, [0.025, 0.975])), abs=1e-12)
    assert got["difference"] == pytest.approx(
        cohen_kappa_score(ref, good, weights="quadratic")
        - cohen_kappa_score(ref, poor, weights="quadratic"), abs=1e-12)
    assert got["n"] == 120 and got["excludes_zero"] is True and got["ci95"][0] > 0


def test_a_judge_against_itself_differs_by_nothing_real():
    rng = np.random.default_rng(1)
    ref, judge = (np.array(x) for x in _pair(rng, 90, 3, 0.7))
    same = paired_kappa_difference(ref, judge, judge, labels=[0, 1, 2])
    assert same["difference"] == 0 and same["ci95"] == (0.0, 0.0)
    assert same["excludes_zero"] is False
    # Two judges of the same quality: the interval straddles 0.
    other = np.where(rng.random(90) < 0.7, ref, rng.integers(0, 3, size=90))
    close = paired_kappa_difference(ref, judge, other, labels=[0, 1, 2])
    assert close["ci95"][0] < 0 < close["ci95"][1] and close["excludes_zero"] is False


def test_paired_difference_edge_cases():
    empty = paired_kappa_difference([], [], [], labels=["A", "B"])
    assert empty["n"] == 0 and math.isnan(empty["difference"])
    with pytest.raises(ValueError):
        paired_kappa_difference([1, 2], [1], [1, 2], labels=[1, 2])
    with pytest.raises(ValueError):
        paired_kappa_difference([1, 3], [1, 2], [1, 2], labels=[1, 2])
