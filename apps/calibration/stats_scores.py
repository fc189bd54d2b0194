"""Scoring a judge against a human reference: majority label, classification scores, rank
correlation for numeric scores."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import spearmanr
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from apps.calibration.stats_common import as_matrix, is_missing


def majority(rows: Iterable[Hashable | None]) -> Hashable | None:
    """Most common label among one item's ratings; None on a tie for first place.

    ``rows`` are the labels the item received, one per rater; missing ones (None/NaN) are not
    votes. No majority (a tie, or no ratings) gives None rather than an arbitrary winner, so
    the caller decides whether such items count as a reference at all.
    """
    votes = Counter(label for label in rows if not is_missing(label))
    if not votes:
        return None
    ranked = votes.most_common(2)
    if len(ranked) == 2 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


def majority_vector(ratings: ArrayLike) -> list[Hashable | None]:
    """:func:`majority` of each row of a (n_items, n_raters) table."""
    return [majority(row) for row in as_matrix(ratings)]


def classification_scores(
    reference: ArrayLike, predicted: ArrayLike, *, labels: Sequence[Hashable]
) -> dict[str, float]:
    """Accuracy and macro-averaged precision, recall and F1 of ``predicted`` vs ``reference``.

    Macro averaging over ``labels`` weighs every class equally, so a judge that never says
    "tie" is penalised even when ties are rare. A class never predicted scores 0 precision
    (``zero_division=0``) instead of raising a warning. Values are in 0..1.
    """
    reference = np.asarray(reference)
    predicted = np.asarray(predicted)
    precision, recall, f1, _ = precision_recall_fscore_support(
        reference, predicted, labels=labels, average="macro", zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(reference, predicted)),
        "macro_precision": float(precision),
        "macro_recall": float(recall),
        "macro_f1": float(f1),
    }


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman rank correlation of two numeric score vectors (``scipy.stats.spearmanr``).

    Pairs with a missing value (None/NaN) on either side are dropped. NaN when fewer than two
    pairs remain or one side is constant: a correlation with a constant is undefined, and
    scipy would warn and return NaN anyway.
    """
    first = np.asarray(x, dtype=float)
    second = np.asarray(y, dtype=float)
    if first.ndim != 1 or first.shape != second.shape:
        raise ValueError(
            f"x and y must be 1-D and of equal length, got {first.shape} and {second.shape}"
        )
    keep = ~(np.isnan(first) | np.isnan(second))
    first, second = first[keep], second[keep]
    if first.size < 2 or np.ptp(first) == 0 or np.ptp(second) == 0:
        return math.nan
    return float(spearmanr(first, second).statistic)
