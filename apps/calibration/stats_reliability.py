"""Reliability of a panel of raters: Fleiss' kappa, Krippendorff's alpha, one-way ICC.

All take a (n_items, n_raters) table with None/NaN for a missing rating. Undefined values
follow the convention of :mod:`apps.calibration.stats_agreement`: when every usable rating is
the same single value, chance agreement is total and the statistic is 0/0; we return 1.0
(every pair agrees) rather than NaN, and NaN when there is nothing to compare at all.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Literal

import krippendorff
import numpy as np
from numpy.typing import ArrayLike

from apps.calibration.stats_common import encode_matrix, numeric_matrix

Level = Literal["nominal", "ordinal", "interval"]

_LEVELS = ("nominal", "ordinal", "interval")


def fleiss_kappa(ratings: ArrayLike) -> float:
    """Fleiss' kappa for many raters on categorical labels, allowing missing ratings.

    Only items with at least two ratings are used; m_i is the number of ratings of item i and
    n_ij how many of them are category j. Formula (Fleiss 1971, with m_i per item):

        P_i  = (sum_j n_ij**2 - m_i) / (m_i * (m_i - 1))   share of agreeing rater pairs
        P    = mean_i P_i
        p_j  = sum_i n_ij / sum_i m_i                      pooled category share
        P_e  = sum_j p_j**2
        kappa = (P - P_e) / (1 - P_e)

    With the same number of raters on every item this is exactly the classic formula (the
    one statsmodels implements); per-item m_i is the usual extension for incomplete tables.
    """
    codes, categories = encode_matrix(ratings)
    n_categories = len(categories)
    present = codes >= 0
    rows = np.nonzero(present)[0]
    # Item x category count table in one bincount over offset codes.
    table = np.bincount(
        rows * n_categories + codes[present], minlength=codes.shape[0] * n_categories
    ).reshape(codes.shape[0], n_categories)
    m = table.sum(axis=1)
    table, m = table[m >= 2], m[m >= 2]
    if m.size == 0:
        return math.nan
    p_category = table.sum(axis=0) / m.sum()
    if np.count_nonzero(p_category) == 1:
        return 1.0
    p_items = ((table**2).sum(axis=1) - m) / (m * (m - 1))
    p_chance = float((p_category**2).sum())
    return float((p_items.mean() - p_chance) / (1.0 - p_chance))


def krippendorff_alpha(
    ratings: ArrayLike,
    *,
    level: Level = "nominal",
    value_domain: Sequence[Hashable] | None = None,
) -> float:
    """Krippendorff's alpha via the ``krippendorff`` package, allowing missing ratings.

    ``level`` is "nominal", "ordinal" or "interval". Nominal labels may be anything hashable
    (they are mapped to integer codes). Ordinal needs an order: numeric labels carry it, or
    pass ``value_domain`` listing the labels from low to high (required for text labels).
    Interval needs numeric labels, since the distances are the numbers' differences; there
    ``value_domain`` only checks that every label belongs to it.
    """
    if level not in _LEVELS:
        raise ValueError(f"level must be one of {_LEVELS}, got {level!r}")
    if level == "interval" or (level == "ordinal" and value_domain is None):
        if value_domain is not None:
            encode_matrix(ratings, domain=value_domain)  # only to refuse out-of-domain labels
        try:
            values = numeric_matrix(ratings)
        except ValueError as error:
            raise ValueError(
                f"{level} alpha needs numeric labels"
                + (" or an ordered value_domain" if level == "ordinal" else "")
            ) from error
    else:
        codes, _ = encode_matrix(ratings, domain=value_domain)
        values = np.where(codes >= 0, codes, np.nan).astype(float)
    # Only items rated at least twice carry information (the package ignores the rest too).
    values = values[(~np.isnan(values)).sum(axis=1) >= 2]
    distinct = np.unique(values[~np.isnan(values)])
    if distinct.size == 0:
        return math.nan
    if distinct.size == 1:
        return 1.0
    # The package wants raters as rows and items as columns.
    return float(krippendorff.alpha(reliability_data=values.T, level_of_measurement=level))


def icc1(ratings: ArrayLike) -> tuple[float, float]:
    """One-way random-effects ICC (Shrout & Fleiss 1979): returns (ICC(1,1), ICC(1,k)).

    One-way because rater columns need not be the same people on every item (rater "slots").
    BMS is the between-items mean square, WMS the within-item mean square, k raters per item:

        ICC1  = (BMS - WMS) / (BMS + (k - 1) * WMS)   reliability of one rating
        ICC1k = (BMS - WMS) / BMS                     reliability of the mean of k ratings

    ``ratings`` is numeric (n_items, k); rows with any missing rating are dropped, because the
    formulas assume the same k on every item. NaN when fewer than 2 items or raters remain or
    a denominator is zero.
    """
    values = numeric_matrix(ratings)
    values = values[~np.isnan(values).any(axis=1)]
    n, k = values.shape
    if n < 2 or k < 2:
        return math.nan, math.nan
    item_means = values.mean(axis=1)
    grand_mean = values.mean()
    bms = k * float(((item_means - grand_mean) ** 2).sum()) / (n - 1)
    wms = float(((values - item_means[:, None]) ** 2).sum()) / (n * (k - 1))
    single_denominator = bms + (k - 1) * wms
    single = (bms - wms) / single_denominator if single_denominator > 0 else math.nan
    average = (bms - wms) / bms if bms > 0 else math.nan
    return single, average
