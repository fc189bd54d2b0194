"""Agreement between two raters: percent agreement, Cohen's kappa and its bootstrap interval.

Convention for undefined kappa: kappa is 0/0 when both raters put every item in one and the
same class (there is no chance-corrected disagreement to measure). scikit-learn returns NaN
there. We return 1.0 when every counted pair agrees, because a report row reading "nan" next
to 100 % raw agreement misleads more than it informs, and NaN otherwise (no pairs at all).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from apps.calibration.stats_common import encode_matrix

Weights = Literal["linear", "quadratic"] | None

_WEIGHTS = (None, "linear", "quadratic")


def _check_pair(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    # Natural dtypes, not object: scikit-learn refuses object arrays of numbers.
    first = np.asarray(a)
    second = np.asarray(b)
    if first.ndim != 1 or second.ndim != 1 or first.shape != second.shape:
        raise ValueError(
            f"a and b must be 1-D and of equal length, got {first.shape} and {second.shape}"
        )
    return first, second


def percent_agreement(a: ArrayLike, b: ArrayLike) -> float:
    """Share of items on which both raters gave the same label, in 0..1 (NaN without items).

    Reported beside kappa because it is what people read intuitively; kappa then says how much
    of it is more than chance.
    """
    first, second = _check_pair(a, b)
    if first.size == 0:
        return math.nan
    # Compared as objects so that 1 == 1.0 but "1" != 1, whatever dtypes a and b came in.
    return float(np.mean(first.astype(object) == second.astype(object)))


def cohen_kappa(
    a: ArrayLike,
    b: ArrayLike,
    *,
    labels: Sequence[Hashable] | None = None,
    weights: Weights = None,
) -> float:
    """Cohen's kappa between two raters, computed by ``sklearn.metrics.cohen_kappa_score``.

    ``weights`` is None (nominal), "linear" or "quadratic"; weighted kappa measures distance by
    position in ``labels`` (default: the sorted labels present), so pass ``labels`` in scale
    order for ordinal scales. Pairs with a label outside ``labels`` are ignored, as in
    scikit-learn. Undefined kappa (both raters use one identical class) is 1.0 when all pairs
    agree and NaN otherwise; see the module docstring.
    """
    first, second = _check_pair(a, b)
    if first.size == 0:
        return math.nan
    with warnings.catch_warnings():
        # The single-class case is handled below; sklearn's warnings about it are only noise.
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.filterwarnings("ignore", "A single label was found", UserWarning)
        value = cohen_kappa_score(first, second, labels=labels, weights=weights)
        if not math.isnan(value):
            return float(value)
        counts = confusion_matrix(first, second, labels=labels)
    total = counts.sum()
    return 1.0 if total > 0 and np.trace(counts) == total else math.nan


def confusion(a: ArrayLike, b: ArrayLike, *, labels: Sequence[Hashable]) -> list[list[int]]:
    """Confusion matrix as nested lists: rows are rater ``a`` (the human reference), columns
    rater ``b`` (the judge), both in ``labels`` order. Plain lists so it can go into JSON."""
    first, second = _check_pair(a, b)
    counts = confusion_matrix(first, second, labels=labels)
    return [[int(cell) for cell in row] for row in counts]


def _weight_matrix(k: int, weights: Weights) -> np.ndarray:
    if weights not in _WEIGHTS:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    positions = np.arange(k, dtype=float)
    distance = np.abs(positions[:, None] - positions[None, :])
    if weights is None:
        return (distance > 0).astype(float)
    return distance if weights == "linear" else distance**2


def kappa_from_confusion(counts: ArrayLike, *, weights: Weights = None) -> np.ndarray:
    """Cohen's kappa from confusion matrices of shape (..., k, k), one value per matrix.

    Same formula as scikit-learn, kappa = 1 - sum(w * O) / sum(w * E) with E the outer product
    of the marginals divided by n, but over a whole stack of matrices at once: this is what
    makes a 1,000-resample bootstrap cheap. Undefined entries follow the module convention
    (1.0 if all pairs agree, NaN if the matrix is empty).
    """
    observed = np.asarray(counts, dtype=float)
    k = observed.shape[-1]
    if observed.ndim < 2 or observed.shape[-2] != k:
        raise ValueError(f"counts must have shape (..., k, k), got {observed.shape}")
    w = _weight_matrix(k, weights)
    total = observed.sum(axis=(-2, -1))
    rows = observed.sum(axis=-1)
    cols = observed.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = rows[..., :, None] * cols[..., None, :] / total[..., None, None]
        disagreement = (w * observed).sum(axis=(-2, -1))
        chance = (w * expected).sum(axis=(-2, -1))
        kappa = 1.0 - disagreement / chance
    perfect = (total > 0) & (np.trace(observed, axis1=-2, axis2=-1) == total)
    undefined = ~(chance > 0)
    return np.where(undefined, np.where(perfect, 1.0, np.nan), kappa)


def _pair_codes(
    a: np.ndarray, b: np.ndarray, labels: Sequence[Hashable] | None
) -> tuple[np.ndarray, int]:
    """Encode each (a, b) pair as one integer i*k + j, dropping pairs outside ``labels``."""
    if labels is None:
        _, categories = encode_matrix(np.stack([a.astype(object), b.astype(object)], axis=1))
    else:
        categories = list(labels)
    index = {label: code for code, label in enumerate(categories)}
    first = np.fromiter((index.get(x, -1) for x in a), dtype=np.intp, count=a.size)
    second = np.fromiter((index.get(x, -1) for x in b), dtype=np.intp, count=b.size)
    keep = (first >= 0) & (second >= 0)
    k = len(categories)
    return first[keep] * k + second[keep], k


def bootstrap_kappa_ci(
    a: ArrayLike,
    b: ArrayLike,
    *,
    labels: Sequence[Hashable] | None = None,
    weights: Weights = None,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval for Cohen's kappa, resampling items (label pairs).

    Each resample draws n items with replacement (``numpy.random.default_rng(seed)``, so the
    interval is reproducible) and only its k x k confusion counts are kept; kappa for all
    resamples is then computed at once by :func:`kappa_from_confusion`, which matches
    scikit-learn. A resample whose kappa is undefined counts as 1.0 if all its pairs agree
    (the module convention) and is otherwise dropped. Returns (NaN, NaN) without items.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if weights not in _WEIGHTS:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    first, second = _check_pair(a, b)
    codes, k = _pair_codes(first, second, labels)
    n = codes.size
    if n == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    counts = np.empty((n_resamples, k * k), dtype=np.int64)
    # One bincount per resample keeps memory at O(n); a single (n_resamples, n) index matrix
    # was measured slower at 10,000 items (it does not fit in cache).
    for row in range(n_resamples):
        counts[row] = np.bincount(codes[rng.integers(0, n, size=n)], minlength=k * k)
    kappas = kappa_from_confusion(counts.reshape(n_resamples, k, k), weights=weights)
    kappas = kappas[~np.isnan(kappas)]
    if kappas.size == 0:
        return math.nan, math.nan
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(kappas, [tail, 1.0 - tail])
    return float(low), float(high)


def pairwise_kappas(
    ratings: ArrayLike,
    *,
    weights: Weights = None,
    labels: Sequence[Hashable] | None = None,
) -> dict[tuple[int, int], float]:
    """Cohen's kappa for every pair of rater columns (i < j), on the items both rated.

    ``ratings`` is (n_items, n_raters) with None/NaN for missing. All pairs share one label
    set (default: every label present anywhere, sorted) so weighted kappas are on one scale;
    a label missing from an explicit ``labels`` is an error here, not a dropped pair.
    """
    codes, categories = encode_matrix(ratings, domain=labels)
    n_raters = codes.shape[1]
    code_labels = list(range(len(categories)))
    result: dict[tuple[int, int], float] = {}
    for i in range(n_raters):
        for j in range(i + 1, n_raters):
            both = (codes[:, i] >= 0) & (codes[:, j] >= 0)
            result[(i, j)] = cohen_kappa(
                codes[both, i], codes[both, j], labels=code_labels, weights=weights
            )
    return result


def landis_koch(kappa: float) -> str:
    """Landis & Koch (1977) verbal band for a kappa: poor, slight, fair, moderate,
    substantial, almost perfect; "undefined" for NaN. Upper bounds are inclusive."""
    if math.isnan(kappa):
        return "undefined"
    if kappa < 0:
        return "poor"
    if kappa <= 0.20:
        return "slight"
    if kappa <= 0.40:
        return "fair"
    if kappa <= 0.60:
        return "moderate"
    if kappa <= 0.80:
        return "substantial"
    return "almost perfect"


def bootstrap_kappa_cis(
    jobs: Sequence[tuple[ArrayLike, ArrayLike, Sequence[Hashable], Weights]],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> list[tuple[float, float]]:
    """:func:`bootstrap_kappa_ci` of many rater pairs at once: `jobs` are (a, b, labels,
    weights); the results agree with one call per pair to floating-point rounding (1e-12).
    See :func:`bootstrap_kappa_cis_coded` for how."""
    coded = []
    for a, b, labels, weights in jobs:
        if weights not in _WEIGHTS:
            raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
        first, second = _check_pair(a, b)
        codes, k = _pair_codes(first, second, labels)
        coded.append((codes // k, codes % k, k, weights))
    return bootstrap_kappa_cis_coded(coded, n_resamples=n_resamples, seed=seed, level=level)


def bootstrap_kappa_cis_coded(
    jobs: Sequence[tuple[np.ndarray, np.ndarray, int, Weights]],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> list[tuple[float, float]]:
    """Many bootstrap intervals from label codes: `jobs` are (reference codes, judge codes,
    k, weights) with codes in 0..k-1, one position per item.

    A summary of twenty judges on six criteria asks for 120 intervals. Pairs with the same
    number of items n share the item draws (the same seed draws the same indices), so the
    draws are made once per n and turned into a (resamples x n) table of how often each item
    was drawn. Kappa needs, per resample, only the weighted disagreement, the two marginals
    and the diagonal, which are that table times a few columns per pair: one matrix product
    for all pairs (exact in float32, every entry being a small integer sum), with identical
    columns (the same reference seen by several judges) computed once.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    results: list[tuple[float, float]] = [(math.nan, math.nan)] * len(jobs)
    by_size: dict[int, list[int]] = {}
    for index, (ref, _, _, weights) in enumerate(jobs):
        if weights not in _WEIGHTS:
            raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
        by_size.setdefault(len(ref), []).append(index)
    tail = (1.0 - level) / 2.0
    for n, members in by_size.items():
        if n == 0:
            continue
        columns: list[np.ndarray] = []
        seen: dict[tuple, int] = {}
        width = 0
        layout = []
        for index in members:
            ref, judge, k, weights = jobs[index]
            ref = np.asarray(ref, dtype=np.intp)
            judge = np.asarray(judge, dtype=np.intp)
            offsets = []
            for codes in (ref, judge):
                # Identical one-hot blocks (one reference seen by twenty judges) once.
                key = (k, codes.tobytes())
                if key not in seen:
                    block = np.zeros((n, k), dtype=np.float32)
                    block[np.arange(n), codes] = 1
                    seen[key] = width
                    columns.append(block)
                    width += k
                offsets.append(seen[key])
            extra = np.empty((n, 2), dtype=np.float32)
            extra[:, 0] = _weight_matrix(k, weights)[ref, judge]
            extra[:, 1] = ref == judge
            columns.append(extra)
            layout.append((index, offsets[0], offsets[1], width, k, weights))
            width += 2
        matrix = np.hstack(columns)
        rng = np.random.default_rng(seed)
        sums = np.empty((n_resamples, matrix.shape[1]), dtype=np.float64)
        chunk = max(1, min(n_resamples, 2_000_000 // n))  # bounded memory for large n
        done = 0
        while done < n_resamples:
            rows = min(chunk, n_resamples - done)
            # One call draws the same indices as one call per resample (numpy draws each
            # bounded int64 on its own; the equality test of bootstrap_kappa_ci pins it).
            draws = rng.integers(0, n, size=(rows, n))
            offsets = (np.arange(rows) * n)[:, None]
            drawn = np.bincount((draws + offsets).ravel(), minlength=rows * n).reshape(rows, n)
            sums[done : done + rows] = drawn.astype(np.float32) @ matrix
            done += rows
        # Kappa for every member of the same (k, weights) in one vectorised pass.
        groups: dict[tuple, list] = {}
        for entry in layout:
            groups.setdefault((entry[4], entry[5]), []).append(entry)
        for (k, weights), entries in groups.items():
            w = _weight_matrix(k, weights)
            span = np.arange(k)
            marg_ref = sums[:, [e[1] + span for e in entries]]  # (R, m, k)
            marg_judge = sums[:, [e[2] + span for e in entries]]
            disagreement = sums[:, [e[3] for e in entries]]  # (R, m)
            trace = sums[:, [e[3] + 1 for e in entries]]
            with np.errstate(divide="ignore", invalid="ignore"):
                chance = ((marg_ref @ w) * marg_judge).sum(axis=-1) / n
                kappa = 1.0 - disagreement / chance
            kappa = np.where(~(chance > 0), np.where(trace == n, 1.0, np.nan), kappa)
            # Resamples with an undefined kappa are dropped, as in bootstrap_kappa_ci; columns
            # without any (the usual case) share one quantile call (nanquantile is slow).
            has_nan = np.isnan(kappa).any(axis=0)
            clean = np.flatnonzero(~has_nan)
            if clean.size:
                bounds = np.quantile(kappa[:, clean], [tail, 1.0 - tail], axis=0)
                for slot, low, high in zip(clean, bounds[0], bounds[1], strict=True):
                    results[entries[slot][0]] = (float(low), float(high))
            for slot in np.flatnonzero(has_nan):
                values = kappa[:, slot][~np.isnan(kappa[:, slot])]
                if values.size:
                    low, high = np.quantile(values, [tail, 1.0 - tail])
                    results[entries[slot][0]] = (float(low), float(high))
    return results


def paired_kappa_difference(
    reference: ArrayLike,
    first: ArrayLike,
    second: ArrayLike,
    *,
    labels: Sequence[Hashable],
    weights: Weights = None,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Is one judge's kappa really higher than another's on the same items?

    Paired percentile bootstrap: each resample draws items with replacement and computes both
    judges' kappa against the reference on the same draw, so what the two share (which items
    are hard) cancels out of the difference. Returns the point difference (first - second),
    its interval, n, and whether the interval excludes 0. Items must be aligned: position i of
    the three sequences is one item (callers keep the items all three have).
    """
    ref = np.asarray(reference)
    a = np.asarray(first)
    b = np.asarray(second)
    if not (ref.ndim == a.ndim == b.ndim == 1 and ref.shape == a.shape == b.shape):
        raise ValueError("reference, first and second must be 1-D and of equal length")
    n = int(ref.size)
    out = {"n": n, "difference": math.nan, "ci95": (math.nan, math.nan), "excludes_zero": False}
    if n == 0:
        return out
    out["difference"] = (cohen_kappa(ref, a, labels=labels, weights=weights)
                         - cohen_kappa(ref, b, labels=labels, weights=weights))
    k = len(labels)
    index = {label: code for code, label in enumerate(labels)}
    codes = [np.fromiter((index.get(x, -1) for x in v), dtype=np.intp, count=n)
             for v in (ref, a, b)]
    if any((c < 0).any() for c in codes):
        raise ValueError("a value outside labels")
    r, j1, j2 = codes
    rng = np.random.default_rng(seed)
    pair_cells = [r * k + j1, r * k + j2]
    diffs = np.empty(n_resamples)
    chunk = max(1, min(n_resamples, 2_000_000 // n))
    done = 0
    while done < n_resamples:
        rows = min(chunk, n_resamples - done)
        draws = np.stack([rng.integers(0, n, size=n) for _ in range(rows)])
        per_judge = []
        for cells in pair_cells:
            drawn = cells[draws] + (np.arange(rows) * k * k)[:, None]
            counts = np.bincount(drawn.ravel(), minlength=rows * k * k).reshape(rows, k, k)
            per_judge.append(kappa_from_confusion(counts, weights=weights))
        diffs[done : done + rows] = per_judge[0] - per_judge[1]
        done += rows
    diffs = diffs[~np.isnan(diffs)]
    if diffs.size:
        tail = (1.0 - level) / 2.0
        low, high = np.quantile(diffs, [tail, 1.0 - tail])
        out["ci95"] = (float(low), float(high))
        out["excludes_zero"] = bool(low > 0 or high < 0)
    return out
