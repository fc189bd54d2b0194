"""The robustness chart's geometry: one row per probe, worst first, the FPR with its 95%
interval on a 0..1 axis and the gate's limit as a line. Plain numbers; the template draws."""

from __future__ import annotations

WIDTH = 300
ROW = 18
LEFT = 170  # room for the probe's name


def x_of(value: float) -> float:
    return round(LEFT + min(1.0, max(0.0, value)) * WIDTH, 1)


def fpr_chart(section: dict | None) -> dict | None:
    if not section or not section.get("probes"):
        return None
    rows = []
    for n, name in enumerate(section["worst_first"]):
        p = section["probes"][name]
        low, high = p["fpr_ci95"]
        rows.append({"name": name, "f": p, "y": n * ROW + 12, "text_y": n * ROW + 16,
                     "fpr": None if p["fpr"] is None else x_of(p["fpr"]),
                     "low": None if low is None else x_of(low),
                     "high": None if high is None else x_of(high),
                     "gated": name in section["gate"]["gated"],
                     "over": high is not None and high > section["gate"]["max_fpr"]})
    height = len(rows) * ROW + 24
    return {"rows": rows, "width": LEFT + WIDTH + 20, "height": height,
            "limit_x": x_of(section["gate"]["max_fpr"]), "axis_y": height - 10,
            "ticks": [{"x": x_of(t), "label": f"{t:g}"} for t in (0, 0.25, 0.5, 0.75, 1.0)]}
