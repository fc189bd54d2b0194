"""Time bootstrap_kappa_ci the way the calibration report uses it: 10,000 items x 5 criteria,
1,000 resamples each. Not a test; run ``.venv/bin/python benchmarks/bench_stats_bootstrap.py``.

The last line is machine-readable: ``BENCH <name> value=<s> unit=s bound=<s> ratio=<value/bound>``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apps.calibration.stats import bootstrap_kappa_ci  # noqa: E402

N_ITEMS = 10_000
N_CRITERIA = 5
N_RESAMPLES = 1000
BOUND_S = 2.0


def main() -> None:
    rng = np.random.default_rng(0)
    criteria = []
    for _ in range(N_CRITERIA):
        # A 1-5 rubric scale where the judge copies the human about 60 % of the time.
        human = rng.integers(1, 6, size=N_ITEMS)
        judge = np.where(rng.random(N_ITEMS) < 0.6, human, rng.integers(1, 6, size=N_ITEMS))
        criteria.append((human, judge))

    start = time.perf_counter()
    for human, judge in criteria:
        low, high = bootstrap_kappa_ci(
            human, judge, weights="quadratic", n_resamples=N_RESAMPLES, seed=0
        )
        print(f"quadratic kappa 95% CI: [{low:.4f}, {high:.4f}]")
    elapsed = time.perf_counter() - start

    print(
        f"BENCH calibration_bootstrap_10k_s value={elapsed:.3f} unit=s "
        f"bound={BOUND_S:g} ratio={elapsed / BOUND_S:.3f}"
    )


if __name__ == "__main__":
    main()
