"""Server-rendered chart geometry: kappa intervals over the Landis-Koch bands, heat-map shades.

Plain numbers for SVG attributes and CSS class names; the templates draw them. No JavaScript.
"""

from __future__ import annotations

WIDTH = 420
LOW, HIGH = -0.2, 1.0
BANDS = [(-0.2, 0.0, "poor"), (0.0, 0.2, "slight"), (0.2, 0.4, "fair"), (0.4, 0.6, "moderate"),
         (0.6, 0.8, "substantial"), (0.8, 1.0, "almost perfect")]


def x_of(value: float) -> float:
    clamped = min(HIGH, max(LOW, value))
    return round((clamped - LOW) / (HIGH - LOW) * WIDTH, 1)


def kappa_bar(kappa: float | None, ci: list | None, ceiling: float | None,
              threshold: float, lower_threshold: float) -> dict:
    bands = [{"x": x_of(a), "width": round(x_of(b) - x_of(a), 1), "name": name,
              "label_x": round((x_of(a) + x_of(b)) / 2, 1), "css": f"band-{i}"}
             for i, (a, b, name) in enumerate(BANDS)]
    bar = {"width": WIDTH, "bands": bands, "kappa": None, "ci": None, "ceiling": None,
           "threshold_x": x_of(threshold), "lower_threshold_x": x_of(lower_threshold),
           "ticks": [{"x": x_of(t), "label": f"{t:g}"} for t in (0, 0.2, 0.4, 0.6, 0.8, 1.0)]}
    if kappa is not None:
        bar["kappa"] = x_of(kappa)
    if ci and ci[0] is not None and ci[1] is not None:
        bar["ci"] = {"x1": x_of(ci[0]), "x2": x_of(ci[1])}
    if ceiling is not None:
        bar["ceiling"] = x_of(ceiling)
    return bar


def heat_rows(confusion: dict) -> list[dict]:
    """Rows of the confusion matrix with a shade 0-5 per cell (share of the row)."""
    rows = []
    for label, counts in zip(confusion["labels"], confusion["matrix"], strict=True):
        total = sum(counts)
        cells = []
        for col_label, count in zip(confusion["labels"], counts, strict=True):
            share = count / total if total else 0.0
            cells.append({"count": count, "share": share,
                          "shade": min(5, int(share * 6)),
                          "diagonal": col_label == label})
        rows.append({"label": label, "cells": cells, "total": total})
    return rows
