"""What the numbers mean, in words a reviewer can paste into a report.

The band's name always comes from stats.landis_koch, so a kappa gets the same word on every
page, in every sentence and in every file (kappa exactly 0 is "slight": at chance, not worse).
"""

from __future__ import annotations

import math

from apps.calibration.stats import landis_koch

MEANINGS = {
    "poor": "worse than chance",
    "slight": "barely better than chance",
    "fair": "some agreement beyond chance, far from reliable",
    "moderate": "moderate agreement: usable with care",
    "substantial": "substantial agreement",
    "almost perfect": "almost perfect agreement",
    "undefined": "not defined on these data",
}


def band_of(kappa: float | None) -> tuple[str, str]:
    if kappa is None or (isinstance(kappa, float) and math.isnan(kappa)):
        return "undefined", MEANINGS["undefined"]
    name = landis_koch(float(kappa))
    if kappa == 0:
        return name, "exactly at chance (not worse)"
    return name, MEANINGS[name]


def kappa_sentence(r: dict) -> str:
    if r["kappa"] is None:
        return "Not enough items with both a human reference and a judge verdict to say."
    name, meaning = band_of(r["kappa"])
    low, high = r["kappa_ci95"] or (None, None)
    interval = ""
    if low is not None and high is not None:
        interval = (f" The 95% interval runs from {low:.2f} to {high:.2f}: "
                    f"from {band_of(low)[0]} to {band_of(high)[0]}.")
    ceiling = ""
    alpha = r.get("human_alpha")
    if alpha is not None:
        ceiling = f" The humans agree among themselves at alpha = {alpha:.2f}."
    weighting = "" if r["kappa_weighting"] == "none" else f" ({r['kappa_weighting']} weights)"
    return (f"On {r['n']} items the judge agrees with the human reference {r['agreement']:.0%} "
            f"of the time; kappa{weighting} = {r['kappa']:.2f}, {name} ({meaning})."
            f"{interval}{ceiling}")
