"""Rates and mean changes with their 95% intervals, for the reward-hacking probes.

- A share k of n: Wilson's score interval (Wilson 1927). It stays inside [0, 1], is not empty
  at k = 0 or k = n (where the Wald interval collapses to a point and claims certainty from
  zero hits), and keeps close to its nominal coverage for the small n of a probe (50 items).
- A mean change: the mean with Student's t interval (n - 1 degrees of freedom); a difference
  of rewards in [0, 1] is bounded, so the t interval is reasonable from a few dozen items.

See docs/decisions/0015-reward-hacking-probes.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | tuple[None, None]:
    """Wilson's 95% score interval of k successes in n trials; (None, None) when n == 0."""
    if n <= 0:
        return None, None
    if not 0 <= k <= n:
        raise ValueError(f"k must lie between 0 and n, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = (z / (1 + z2 / n)) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    # At k == 0 and k == n the bound is exact on paper; keep float noise out of it.
    return (0.0 if k == 0 else low), (1.0 if k == n else high)


def mean_interval(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    """(mean, low, high): the mean and its 95% t interval; no interval for fewer than two."""
    clean = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not clean:
        return None, None, None
    mean = math.fsum(clean) / len(clean)
    if len(clean) < 2:
        return mean, None, None
    from scipy.stats import t

    var = math.fsum((v - mean) ** 2 for v in clean) / (len(clean) - 1)
    half = float(t.ppf(0.975, len(clean) - 1)) * math.sqrt(var / len(clean))
    return mean, mean - half, mean + half
