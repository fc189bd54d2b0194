"""Input handling shared by the statistics modules: missing values and label encoding.

A rating matrix is (n_items, n_raters). A missing rating is ``None`` or a float NaN; nothing
else (not ``""``, not ``"nan"``) counts as missing, so that a stray value is an error rather
than a silently dropped vote.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Sequence

import numpy as np
from numpy.typing import ArrayLike


def is_missing(value: object) -> bool:
    """Return True for ``None`` and float NaN (Python or numpy), the two missing markers."""
    if value is None:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def as_matrix(ratings: ArrayLike) -> np.ndarray:
    """Return ``ratings`` as a 2-D object array, raising ValueError for ragged or 1-D input."""
    matrix = np.asarray(ratings, dtype=object)
    if matrix.ndim != 2:
        raise ValueError(
            f"ratings must be a rectangular (n_items, n_raters) table, got shape {matrix.shape}"
        )
    return matrix


def encode_matrix(
    ratings: ArrayLike, *, domain: Sequence[Hashable] | None = None
) -> tuple[np.ndarray, list[Hashable]]:
    """Encode a rating matrix as integer category codes, -1 where a rating is missing.

    Returns ``(codes, categories)`` with ``categories[code]`` the original label. Without a
    ``domain`` the categories are the sorted distinct present labels; with one, its order is
    kept (this is how ordinal scales keep their order) and a label outside it is an error.
    """
    matrix = as_matrix(ratings)
    flat = matrix.ravel()
    present = {value for value in flat if not is_missing(value)}
    if domain is None:
        categories = sorted(present)
    else:
        categories = list(domain)
        unknown = present - set(categories)
        if unknown:
            raise ValueError(f"labels not in value_domain: {sorted(map(repr, unknown))}")
    index = {label: code for code, label in enumerate(categories)}
    codes = np.fromiter(
        (-1 if is_missing(value) else index[value] for value in flat),
        dtype=np.intp,
        count=flat.size,
    )
    return codes.reshape(matrix.shape), categories


def numeric_matrix(ratings: ArrayLike) -> np.ndarray:
    """Return ``ratings`` as a float matrix with NaN for missing; non-numbers are an error.

    Strings are refused on purpose: ``"10" < "9"`` as text, so guessing a numeric meaning
    for text labels would give wrong distances without any warning.
    """
    array = np.asarray(ratings)
    if array.ndim == 2 and array.dtype.kind in "iuf":
        return array.astype(float)
    matrix = as_matrix(ratings)
    values = np.empty(matrix.shape, dtype=float)
    for position, value in np.ndenumerate(matrix):
        if is_missing(value):
            values[position] = np.nan
        elif isinstance(value, numbers.Real):
            values[position] = float(value)
        else:
            raise ValueError(f"expected numeric ratings, got {value!r}")
    return values
