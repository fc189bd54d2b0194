"""What the numbers mean, in words a reviewer can paste into a report."""

from __future__ import annotations

BANDS = [
    (-1.0, 0.0, "poor", "worse than chance"),
    (0.0, 0.20, "slight", "barely better than chance"),
    (0.20, 0.40, "fair", "some agreement beyond chance, far from reliable"),
    (0.40, 0.60, "moderate", "moderate agreement: usable with care"),
    (0.60, 0.80, "substantial", "substantial agreement"),
    (0.80, 1.0, "almost perfect", "almost perfect agreement"),
]


def band_of(kappa: float | None) -> tuple[str, str]:
    if kappa is None:
        return "undefined", "not defined on these data"
    for low, high, name, meaning in BANDS:
        if kappa <= high or high == 1.0:
            if kappa >= low or low == -1.0:
                return name, meaning
    return "undefined", "not defined on these data"


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
