"""Tests for apps.calibration.stats: against the reference libraries, worked examples from the
literature, properties, and the published figures of the two real demo data sets.

No Django needed: run with ``.venv/bin/pytest tests/calibration/test_stats.py -p no:django``.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    precision_recall_fscore_support,
)

from apps.calibration.stats import (
    bootstrap_kappa_ci,
    classification_scores,
    cohen_kappa,
    confusion,
    fleiss_kappa,
    icc1,
    kappa_from_confusion,
    krippendorff_alpha,
    landis_koch,
    majority,
    majority_vector,
    pairwise_kappas,
    percent_agreement,
    spearman,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATASETS = Path("/work/shared/datasets")


def _dataset(relative: str) -> Path:
    # The repo will carry its own copy of the demo data; until then use the shared one.
    repo_copy = REPO_ROOT / "demo_data" / relative
    return repo_copy if repo_copy.exists() else SHARED_DATASETS / relative


PANDALM_LABELS = _dataset("pandalm/labels.csv")
HANNA_RATINGS = _dataset("hanna/ratings_long.csv")

WEIGHTS = [None, "linear", "quadratic"]
FAST = settings(max_examples=40, deadline=None)
N = None


# --- strategies -------------------------------------------------------------------------


@st.composite
def rater_pair(draw, min_size=2, max_size=60, n_classes=4):
    n = draw(st.integers(min_size, max_size))
    labels = st.integers(0, n_classes - 1)
    a = draw(st.lists(labels, min_size=n, max_size=n))
    b = draw(st.lists(labels, min_size=n, max_size=n))
    return a, b


@st.composite
def rating_table(draw, n_raters=3, allow_missing=True):
    n = draw(st.integers(2, 30))
    cell = st.one_of(st.none(), st.integers(1, 4)) if allow_missing else st.integers(1, 4)
    rows = draw(
        st.lists(st.lists(cell, min_size=n_raters, max_size=n_raters), min_size=n, max_size=n)
    )
    return rows


# --- percent agreement, Cohen's kappa, confusion ------------------------------------------


def test_percent_agreement():
    assert percent_agreement([1, 2, 3, 4], [1, 2, 0, 0]) == 0.5
    assert percent_agreement(["a"], ["a"]) == 1.0
    assert math.isnan(percent_agreement([], []))
    with pytest.raises(ValueError):
        percent_agreement([1, 2], [1])


def test_cohen_kappa_wikipedia_yes_no_example():
    # Wikipedia "Cohen's kappa": 50 proposals, 20 both yes, 15 both no, A yes/B no 5,
    # A no/B yes 10: p_o = 0.7, p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5, kappa = 0.4.
    a = ["yes"] * 20 + ["no"] * 15 + ["yes"] * 5 + ["no"] * 10
    b = ["yes"] * 20 + ["no"] * 15 + ["no"] * 5 + ["yes"] * 10
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert percent_agreement(a, b) == pytest.approx(0.7)


@pytest.mark.parametrize("weights", WEIGHTS)
def test_cohen_kappa_matches_sklearn_on_random_data(weights):
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = rng.integers(0, 5, size=80)
        b = np.where(rng.random(80) < 0.6, a, rng.integers(0, 5, size=80))
        assert cohen_kappa(a, b, weights=weights) == pytest.approx(
            cohen_kappa_score(a, b, weights=weights), abs=1e-12
        )


def test_cohen_kappa_undefined_cases():
    # sklearn gives NaN when both raters use one identical class; we call that perfect.
    assert cohen_kappa([1, 1, 1], [1, 1, 1]) == 1.0
    assert cohen_kappa(["x"] * 4, ["x"] * 4, weights="quadratic") == 1.0
    assert math.isnan(cohen_kappa([], []))


def test_confusion_rows_are_first_rater():
    human = ["yes", "yes", "no", "no", "no"]
    judge = ["no", "yes", "no", "no", "yes"]
    assert confusion(human, judge, labels=["yes", "no"]) == [[1, 1], [1, 2]]
    assert confusion(human, judge, labels=["no", "yes"]) == [[2, 1], [1, 1]]


@FAST
@given(a=st.lists(st.integers(0, 3), min_size=2, max_size=60))
def test_identical_raters_have_kappa_one(a):
    assume(len(set(a)) >= 2)
    for weights in WEIGHTS:
        assert cohen_kappa(a, a, weights=weights) == pytest.approx(1.0)


@FAST
@given(pair=rater_pair())
def test_kappa_is_symmetric(pair):
    a, b = pair
    for weights in WEIGHTS:
        forward = cohen_kappa(a, b, weights=weights)
        backward = cohen_kappa(b, a, weights=weights)
        assert forward == pytest.approx(backward, abs=1e-12, nan_ok=True)


# --- vectorised kappa and the bootstrap ----------------------------------------------------


@pytest.mark.parametrize("weights", WEIGHTS)
def test_kappa_from_confusion_matches_sklearn(weights):
    rng = np.random.default_rng(7)
    matrices, expected = [], []
    for _ in range(50):
        k = int(rng.integers(2, 7))
        a = rng.integers(0, k, size=60)
        b = np.where(rng.random(60) < 0.5, a, rng.integers(0, k, size=60))
        labels = list(range(k))
        counts = confusion_matrix(a, b, labels=labels)
        single = kappa_from_confusion(counts, weights=weights)
        assert single == pytest.approx(cohen_kappa_score(a, b, labels=labels, weights=weights))
        if k == 4:
            matrices.append(counts)
            expected.append(cohen_kappa_score(a, b, weights=weights, labels=labels))
    # A stack of matrices gives one kappa per matrix, each equal to sklearn's.
    stacked = kappa_from_confusion(np.stack(matrices), weights=weights)
    assert stacked == pytest.approx(np.array(expected), abs=1e-12)


@FAST
@given(pair=rater_pair(), weights=st.sampled_from(WEIGHTS))
def test_kappa_from_confusion_matches_cohen_kappa(pair, weights):
    a, b = pair
    labels = [0, 1, 2, 3]
    counts = confusion_matrix(a, b, labels=labels)
    assert float(kappa_from_confusion(counts, weights=weights)) == pytest.approx(
        cohen_kappa(a, b, labels=labels, weights=weights), abs=1e-12, nan_ok=True
    )


def test_kappa_from_confusion_undefined():
    assert kappa_from_confusion([[5, 0], [0, 0]]) == 1.0
    assert math.isnan(kappa_from_confusion([[0, 0], [0, 0]]))
    with pytest.raises(ValueError):
        kappa_from_confusion([[1, 2], [3, 4]], weights="cubic")


@pytest.mark.parametrize("weights", WEIGHTS)
def test_bootstrap_equals_resampling_with_sklearn(weights):
    # The same item indices, drawn the same way, fed to sklearn one resample at a time.
    rng = np.random.default_rng(3)
    a = rng.integers(0, 3, size=150)
    b = np.where(rng.random(150) < 0.7, a, rng.integers(0, 3, size=150))
    low, high = bootstrap_kappa_ci(a, b, weights=weights, n_resamples=200, seed=11)
    draw = np.random.default_rng(11)
    kappas = []
    for _ in range(200):
        index = draw.integers(0, a.size, size=a.size)
        kappas.append(cohen_kappa_score(a[index], b[index], weights=weights))
    assert (low, high) == pytest.approx(tuple(np.quantile(kappas, [0.025, 0.975])), abs=1e-12)


def test_bootstrap_is_reproducible_and_level_sets_width():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 3, size=200)
    b = np.where(rng.random(200) < 0.6, a, rng.integers(0, 3, size=200))
    assert bootstrap_kappa_ci(a, b, seed=1) == bootstrap_kappa_ci(a, b, seed=1)
    assert bootstrap_kappa_ci(a, b, seed=1) != bootstrap_kappa_ci(a, b, seed=2)
    wide = bootstrap_kappa_ci(a, b, level=0.95)
    narrow = bootstrap_kappa_ci(a, b, level=0.5)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]
    with pytest.raises(ValueError):
        bootstrap_kappa_ci(a, b, level=1.0)


def test_bootstrap_undefined_cases():
    # Every resample of perfect agreement is perfect, single-class resamples included.
    assert bootstrap_kappa_ci([1] * 40, [1] * 40) == (1.0, 1.0)
    assert bootstrap_kappa_ci([0, 1] * 20, [0, 1] * 20, n_resamples=100) == (1.0, 1.0)
    assert all(math.isnan(x) for x in bootstrap_kappa_ci([], []))


def test_bootstrap_uses_labels_like_sklearn():
    # Pairs outside `labels` are left out, as sklearn's confusion_matrix does.
    a = ["a", "b", "c"] * 20
    b = ["a", "b", "b"] * 20
    with_c = bootstrap_kappa_ci(a, b, labels=["a", "b"], n_resamples=50)
    without_c = bootstrap_kappa_ci(["a", "b"] * 20, ["a", "b"] * 20, n_resamples=50)
    assert with_c == without_c == (1.0, 1.0)


@settings(max_examples=25, deadline=None)
@given(pair=rater_pair(min_size=30, max_size=80, n_classes=3))
def test_bootstrap_interval_contains_estimate(pair):
    a, b = pair
    assume(len(set(a)) >= 2 and len(set(b)) >= 2)
    estimate = cohen_kappa(a, b)
    assume(-0.9 < estimate < 0.9)
    low, high = bootstrap_kappa_ci(a, b, n_resamples=300)
    assert low <= estimate <= high


# --- Fleiss' kappa -------------------------------------------------------------------------

# Wikipedia "Fleiss' kappa" worked example (after Fleiss 1971): 10 items, 14 raters,
# 5 categories, counts per category; P = 0.378, P_e = 0.213, kappa = 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def _ratings_from_counts(table):
    return [[category for category, count in enumerate(row) for _ in range(count)] for row in table]


def _classic_fleiss(table):
    # statsmodels' fleiss_kappa, written out: equal rater count on every item.
    table = np.asarray(table, dtype=float)
    n_raters = table.sum(axis=1)[0]
    p_category = table.sum(axis=0) / table.sum()
    p_items = ((table**2).sum(axis=1) - n_raters) / (n_raters * (n_raters - 1))
    p_chance = (p_category**2).sum()
    return (p_items.mean() - p_chance) / (1 - p_chance)


def test_fleiss_wikipedia_example():
    ratings = _ratings_from_counts(FLEISS_TABLE)
    assert all(len(row) == 14 for row in ratings)
    assert round(fleiss_kappa(ratings), 3) == 0.210
    assert fleiss_kappa(ratings) == pytest.approx(_classic_fleiss(FLEISS_TABLE))


def test_fleiss_matches_classic_formula_on_random_data():
    rng = np.random.default_rng(2)
    for _ in range(20):
        ratings = rng.integers(0, 4, size=(50, 5))
        table = [[int((row == c).sum()) for c in range(4)] for row in ratings]
        assert fleiss_kappa(ratings) == pytest.approx(_classic_fleiss(table), abs=1e-12)


def test_fleiss_with_missing_ratings_by_hand():
    # Item 3 has one rating and is left out. Item 1: m=2, both "a" -> P=1. Item 2: m=3,
    # a,b,b -> (1+4-3)/6 = 1/3. P = 2/3; p_a = 3/5, p_b = 2/5, P_e = 13/25;
    # kappa = (2/3 - 13/25) / (12/25) = 11/36.
    ratings = [["a", "a", None], ["a", "b", "b"], ["b", None, float("nan")]]
    assert fleiss_kappa(ratings) == pytest.approx(11 / 36)


def test_fleiss_undefined_cases():
    assert fleiss_kappa([["a", "a"], ["a", "a"]]) == 1.0
    assert math.isnan(fleiss_kappa([["a", None], [None, "b"]]))


# --- Krippendorff's alpha ------------------------------------------------------------------

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12 units.
KRIPPENDORFF_CODERS = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]


@pytest.mark.parametrize(
    ("level", "expected"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)]
)
def test_krippendorff_2011_example(level, expected):
    ratings = list(zip(*KRIPPENDORFF_CODERS, strict=True))  # items as rows
    assert round(krippendorff_alpha(ratings, level=level), 3) == expected


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_krippendorff_matches_package_on_random_data(level):
    rng = np.random.default_rng(4)
    for _ in range(10):
        ratings = rng.integers(1, 6, size=(40, 4)).astype(float)
        ratings[rng.random(ratings.shape) < 0.2] = np.nan
        expected = krippendorff.alpha(reliability_data=ratings.T, level_of_measurement=level)
        assert krippendorff_alpha(ratings, level=level) == pytest.approx(expected, abs=1e-12)


def test_krippendorff_text_labels():
    rng = np.random.default_rng(6)
    numbers = rng.integers(0, 3, size=(30, 3))
    names = np.array(["low", "mid", "high"], dtype=object)[numbers]
    names[0, 0] = None
    numbers = numbers.astype(float)
    numbers[0, 0] = np.nan
    assert krippendorff_alpha(names) == pytest.approx(krippendorff_alpha(numbers))
    ordinal = krippendorff_alpha(names, level="ordinal", value_domain=["low", "mid", "high"])
    assert ordinal == pytest.approx(krippendorff_alpha(numbers, level="ordinal"))
    with pytest.raises(ValueError):
        krippendorff_alpha(names, level="ordinal")
    with pytest.raises(ValueError):
        krippendorff_alpha(names, level="interval")
    with pytest.raises(ValueError):
        krippendorff_alpha(names, level="ordinal", value_domain=["low", "mid"])


def test_krippendorff_undefined_cases():
    assert krippendorff_alpha([[1, 1], [1, 1], [2, None]]) == 1.0
    assert math.isnan(krippendorff_alpha([[1, None], [None, 2]]))


# --- ICC ----------------------------------------------------------------------------------


def test_icc1_shrout_fleiss_example():
    # Shrout & Fleiss (1979), Table 2: 6 targets, 4 judges; ICC(1,1) = .17, ICC(1,4) = .44.
    ratings = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    single, average = icc1(ratings)
    assert (round(single, 2), round(average, 2)) == (0.17, 0.44)


def test_icc1_drops_incomplete_rows():
    complete = [[1, 2], [3, 3], [5, 4], [2, 2]]
    assert icc1(complete + [[1, None], [np.nan, 5]]) == icc1(complete)
    assert all(math.isnan(x) for x in icc1([[1, 2], [None, 3]]))
    assert all(math.isnan(x) for x in icc1([[2, 2], [2, 2]]))


# --- majority, classification scores, Spearman, bands ---------------------------------------


def test_majority():
    assert majority([1, 1, 2]) == 1
    assert majority(["a", None, "a", "b"]) == "a"
    assert majority([1, 2]) is None
    assert majority([0, 1, 2]) is None
    assert majority([]) is None
    assert majority([None, float("nan")]) is None
    assert majority_vector([[1, 1, 2], [0, 1, 2], [2, None, None]]) == [1, None, 2]


def test_classification_scores_match_sklearn():
    rng = np.random.default_rng(8)
    reference = rng.integers(0, 3, size=100)
    predicted = np.where(rng.random(100) < 0.6, reference, rng.integers(0, 2, size=100))
    scores = classification_scores(reference, predicted, labels=[0, 1, 2])
    p, r, f, _ = precision_recall_fscore_support(
        reference, predicted, labels=[0, 1, 2], average="macro", zero_division=0
    )
    assert scores == pytest.approx(
        {
            "accuracy": accuracy_score(reference, predicted),
            "macro_precision": p,
            "macro_recall": r,
            "macro_f1": f,
        }
    )
    # A class never predicted counts as precision 0, without a warning.
    never = classification_scores([0, 1, 2], [0, 1, 1], labels=[0, 1, 2])
    assert never["macro_precision"] == pytest.approx((1 + 0.5 + 0) / 3)


def test_spearman():
    rng = np.random.default_rng(9)
    x = rng.normal(size=50)
    y = x + rng.normal(size=50)
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman([1], [2]))
    assert spearman([1, 2, None, 4], [1, 2, 9, 3]) == pytest.approx(
        spearmanr([1, 2, 4], [1, 2, 3]).statistic
    )


@pytest.mark.parametrize(
    ("kappa", "band"),
    [
        (-0.01, "poor"),
        (0.0, "slight"),
        (0.20, "slight"),
        (0.21, "fair"),
        (0.40, "fair"),
        (0.41, "moderate"),
        (0.60, "moderate"),
        (0.61, "substantial"),
        (0.80, "substantial"),
        (0.81, "almost perfect"),
        (1.0, "almost perfect"),
        (math.nan, "undefined"),
    ],
)
def test_landis_koch(kappa, band):
    assert landis_koch(kappa) == band


def test_pairwise_kappas_use_items_both_rated():
    ratings = [[1, 1, None], [2, 2, 2], [1, 2, 1], [None, 1, 1], [2, 2, 1], [1, 1, 2]]
    result = pairwise_kappas(ratings)
    assert set(result) == {(0, 1), (0, 2), (1, 2)}
    assert result[(0, 1)] == pytest.approx(cohen_kappa([1, 2, 1, 2, 1], [1, 2, 2, 2, 1]))
    assert result[(1, 2)] == pytest.approx(cohen_kappa([2, 2, 1, 2, 1], [2, 1, 1, 1, 2]))


# --- permuting items changes nothing --------------------------------------------------------


@FAST
@given(data=st.data())
def test_item_order_does_not_matter(data):
    rows = data.draw(rating_table())
    order = data.draw(st.permutations(range(len(rows))))
    shuffled = [rows[i] for i in order]
    a, b = [row[0] or 0 for row in rows], [row[1] or 0 for row in rows]
    same = dict(abs=1e-12, nan_ok=True)
    assert cohen_kappa([a[i] for i in order], [b[i] for i in order]) == pytest.approx(
        cohen_kappa(a, b), **same
    )
    assert fleiss_kappa(shuffled) == pytest.approx(fleiss_kappa(rows), **same)
    for level in ("nominal", "ordinal", "interval"):
        assert krippendorff_alpha(shuffled, level=level) == pytest.approx(
            krippendorff_alpha(rows, level=level), **same
        )
    assert icc1(shuffled) == pytest.approx(icc1(rows), **same)


# --- real data: PandaLM (published figures in /work/shared/datasets/README.md) ---------------


@pytest.fixture(scope="module")
def pandalm():
    with PANDALM_LABELS.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 999
    return {
        "annotators": [[int(row[f"annotator{i}"]) for i in (1, 2, 3)] for row in rows],
        "human_majority": [int(row["human_majority"]) for row in rows],
        "gpt35_raw": [row["gpt35_raw"] for row in rows],
        "gpt35": [int(row["gpt35"]) for row in rows],
        "pandalm7b": [int(row["pandalm7b"]) for row in rows],
    }


def test_pandalm_annotator_kappas(pandalm):
    kappas = pairwise_kappas(pandalm["annotators"])
    rounded = {pair: round(value, 2) for pair, value in kappas.items()}
    assert rounded == {(0, 1): 0.85, (0, 2): 0.88, (1, 2): 0.86}


def test_pandalm_majority_distribution(pandalm):
    majorities = majority_vector(pandalm["annotators"])
    assert Counter(majorities) == {0: 105, 1: 422, 2: 472}
    assert majorities == pandalm["human_majority"]


@pytest.mark.parametrize(
    ("judge", "published"),
    [("gpt35", (71.07, 58.79, 57.36, 57.55)), ("pandalm7b", (66.77, 57.38, 57.50, 57.43))],
)
def test_pandalm_judge_classification_scores(pandalm, judge, published):
    majorities = majority_vector(pandalm["annotators"])
    scores = classification_scores(majorities, pandalm[judge], labels=[0, 1, 2])
    keys = ("accuracy", "macro_precision", "macro_recall", "macro_f1")
    assert tuple(round(100 * scores[key], 2) for key in keys) == published


def test_pandalm_panel_reliability(pandalm):
    assert round(fleiss_kappa(pandalm["annotators"]), 4) == 0.8642
    assert round(krippendorff_alpha(pandalm["annotators"], level="nominal"), 4) == 0.8642


def test_pandalm_judge_kappas(pandalm):
    majorities = majority_vector(pandalm["annotators"])
    gpt35 = cohen_kappa(majorities, pandalm["gpt35"])
    assert round(gpt35, 4) == 0.4958
    assert round(cohen_kappa(majorities, pandalm["pandalm7b"]), 4) == 0.4354
    # README: 0.4929 when the 25 unparseable verdicts are dropped instead of counted as tie.
    parsed = [i for i, raw in enumerate(pandalm["gpt35_raw"]) if raw != "garbage"]
    assert len(parsed) == 999 - 25
    dropped = cohen_kappa([majorities[i] for i in parsed], [pandalm["gpt35"][i] for i in parsed])
    assert round(dropped, 4) == 0.4929
    assert landis_koch(gpt35) == "moderate"
    low, high = bootstrap_kappa_ci(majorities, pandalm["gpt35"])
    assert low < gpt35 < high


# --- real data: HANNA ----------------------------------------------------------------------

# Authors' notebook, printed to 6 significant digits: criterion -> (ICC1, ICC1k).
HANNA_ICC = {
    "Relevance": ("0.137622", "0.323755"),
    "Coherence": ("-0.0547567", "-0.184472"),
    "Empathy": ("0.115955", "0.282378"),
    "Surprise": ("0.0512276", "0.1394"),
    "Engagement": ("0.180231", "0.397433"),
    "Complexity": ("0.278044", "0.536044"),
}


@pytest.fixture(scope="module")
def hanna():
    ratings: dict[str, list[list[int]]] = {}
    with HANNA_RATINGS.open(newline="") as handle:
        for row in csv.DictReader(handle):
            ratings.setdefault(row["criterion"], []).append(
                [int(row[f"human{i}"]) for i in (1, 2, 3)]
            )
    assert {name: len(rows) for name, rows in ratings.items()} == dict.fromkeys(HANNA_ICC, 1056)
    return ratings


@pytest.mark.parametrize("criterion", list(HANNA_ICC))
def test_hanna_icc1(hanna, criterion):
    single, average = icc1(hanna[criterion])
    published_single, published_average = HANNA_ICC[criterion]
    # Agreement to 5 decimals, and indeed the exact figure as the notebook printed it.
    assert single == pytest.approx(float(published_single), abs=5e-6)
    assert average == pytest.approx(float(published_average), abs=5e-6)
    assert (f"{single:.6g}", f"{average:.6g}") == HANNA_ICC[criterion]


def test_hanna_alpha_range(hanna):
    # README: human Krippendorff's alpha (interval) ranges from -0.05 to 0.28 over criteria.
    alphas = [krippendorff_alpha(rows, level="interval") for rows in hanna.values()]
    assert (round(min(alphas), 2), round(max(alphas), 2)) == (-0.05, 0.28)
