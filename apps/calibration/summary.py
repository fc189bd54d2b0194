"""Which judge, which criterion? Every judge of a rubric version on a dataset against every
criterion, on the items the gate uses, in a fixed number of queries.

The same numbers as each judge's full report (kappa, its 95% interval, n, the criterion's gate),
computed together: labels, the split and every judge's verdicts are read once, kappas come from
confusion counts, and the intervals from one batched bootstrap (stats.bootstrap_kappa_cis) that
gives the one-by-one results. Each judge shown is a look at test results and is recorded.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from django.db.models import Count
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from apps.calibration import stats
from apps.calibration.charts import x_of
from apps.calibration.data import load_criteria, read_value
from apps.calibration.looks import looks_summary, record_looks
from apps.calibration.report import (
    BOOTSTRAP_RESAMPLES,
    Thresholds,
    _num,
    choose_scope,
    criterion_gate,
    human_ceiling,
    judges_for,
    rescore_reasons,
    weighting_for,
)
from apps.calibration.splits import ensure_split
from apps.datasets.models import Dataset
from apps.judging.models import JudgeRun, Judgment, JudgmentStatus, RunKind, Verdict
from apps.judging.outcome import gate_reasons
from apps.rubrics import scales
from apps.rubrics.models import RubricVersion

SORTS = ("name", "failed")


@dataclass
class Cell:
    n: int
    kappa: float | None
    low: float | None
    high: float | None
    gate: dict

    @property
    def words(self) -> str:
        return stats.landis_koch(math.nan if self.kappa is None else self.kappa)

    def html(self) -> str:
        """The table cell's content. Built here rather than in the template: 120 cells of a
        few tags each were most of the page's time. Only numbers and fixed words go in."""
        if self.kappa is None:
            figures = format_html('— <small class="muted">n = {}</small>', self.n)
        else:
            figures = format_html(
                '<strong>{}</strong> <small class="muted">{}</small><br><small>[{}, {}] '
                "n = {}</small>", f"{self.kappa:.3f}", self.words, _short(self.low),
                _short(self.high), f"{self.n:,}")
        if not self.gate.get("applies"):
            verdict = mark_safe('<small class="muted">no weight</small>')  # noqa: S308
        elif self.gate.get("passed"):
            verdict = mark_safe('<span class="verdict-pass">✓ passes</span>')  # noqa: S308
        else:
            verdict = mark_safe('<span class="verdict-fail">✗ fails</span>')  # noqa: S308
        return format_html("{}<br>{}", figures, verdict)


@dataclass
class JudgeRow:
    run: JudgeRun
    cells: dict[str, Cell] = field(default_factory=dict)
    calls: int = 0  # finished model calls (live runs)
    failed: int = 0  # failed or invalid among them
    passed: bool = False
    reasons: list[str] = field(default_factory=list)
    ordered: list[Cell | None] = field(default_factory=list)  # cells in the criteria's order

    @property
    def failed_share(self) -> float | None:
        return self.failed / self.calls if self.calls else None


def latest_judges(version: RubricVersion, dataset: Dataset) -> list[JudgeRun]:
    """The latest finished run of each judge name (imported judges included)."""
    latest: dict[str, JudgeRun] = {}
    for run in judges_for(version, dataset).exclude(status__in=("queued", "running")).order_by(
            "name", "-created_at"):
        latest.setdefault(run.name, run)
    return list(latest.values())


def _call_counts(runs: list[JudgeRun]) -> dict[int, tuple[int, int]]:
    live = [r.pk for r in runs if r.kind == RunKind.LIVE]
    if not live:
        return {}
    out: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    rows = (Judgment.objects.filter(run_id__in=live).exclude(status=JudgmentStatus.PENDING)
            .values_list("run_id", "status").annotate(n=Count("id")))
    for run_id, status, n in rows:
        out[run_id][0] += n
        if status in (JudgmentStatus.FAILED, JudgmentStatus.INVALID):
            out[run_id][1] += n
    return {k: (v[0], v[1]) for k, v in out.items()}


def _verdicts(runs: list[JudgeRun], data, items: set[int] | None) -> dict:
    """run id -> criterion key -> item -> value, for every run in one query."""
    scales_of = {d.key: d.scale for d in data}
    out: dict[int, dict[str, dict[int, object]]] = {r.pk: {k: {} for k in scales_of}
                                                     for r in runs}
    if not runs:
        return out
    verdicts = Verdict.objects.filter(run_id__in=list(out), criterion_key__in=list(scales_of))
    if items is not None:
        verdicts = verdicts.filter(item_id__in=items)
    memo: dict[str, dict[str, object]] = {k: {} for k in scales_of}
    for run_id, key, item_id, text in verdicts.values_list("run_id", "criterion_key",
                                                            "item_id", "value"):
        seen = memo[key]
        if text not in seen:
            seen[text] = read_value(scales_of[key], text)
        if seen[text] is not None:
            out[run_id][key][item_id] = seen[text]
    return out


def judge_matrix(*, version: RubricVersion, dataset: Dataset, thresholds: Thresholds,
                 user=None, source: str = "index", sort: str = "", descending: bool = True,
                 record: bool = True) -> dict:
    """Rows of judges x columns of criteria on the gate's items, sorted by `sort` (a criterion
    key: its kappa; "name"; "failed": failed-call share), with the scope and the looks."""
    runs = latest_judges(version, dataset)
    data = load_criteria(version, dataset)
    view = ensure_split(version=version, dataset=dataset, data=data, user=user)
    scope = choose_scope(view, "test", thresholds)
    if scope["items"] is not None:
        data = [d.restricted(scope["items"]) for d in data]
    judged = _verdicts(runs, data, scope["items"])
    criteria = [{"key": d.key, "name": d.criterion["name"], "weight": d.criterion["weight"],
                 "ceiling": human_ceiling(d)} for d in data]
    rows = [JudgeRow(run=run) for run in runs]
    jobs, slots = [], []
    for d in data:
        ref = d.reference()
        labels = scales.allowed_values(d.scale)
        weights = weighting_for(d.scale)
        index = {label: code for code, label in enumerate(labels)}
        k = len(labels)
        items = sorted(ref)
        ref_codes = np.fromiter((index[ref[i]] for i in items), dtype=np.intp,
                                count=len(items))
        for row in rows:
            theirs = judged[row.run.pk][d.key]
            judge_codes = np.fromiter((index.get(theirs.get(i), -1) for i in items),
                                      dtype=np.intp, count=len(items))
            keep = judge_codes >= 0
            a, b = ref_codes[keep], judge_codes[keep]
            kappa = None
            if a.size:
                counts = np.bincount(a * k + b, minlength=k * k).reshape(k, k)
                kappa = _num(stats.kappa_from_confusion(counts, weights=weights))
                jobs.append((a, b, k, weights))
                slots.append((row, d.key))
            row.cells[d.key] = Cell(n=int(a.size), kappa=kappa, low=None, high=None, gate={})
    for (row, key), (low, high) in zip(slots, stats.bootstrap_kappa_cis_coded(
            jobs, n_resamples=BOOTSTRAP_RESAMPLES), strict=True):
        row.cells[key].low, row.cells[key].high = _num(low), _num(high)
    counts = _call_counts(runs)
    ceilings = {c["key"]: c for c in criteria}
    for row in rows:
        row.calls, row.failed = counts.get(row.run.pk, (0, 0))
        reasons = []
        for key, cell in row.cells.items():
            c = ceilings[key]
            cell.gate = criterion_gate({
                "n": cell.n, "kappa": cell.kappa, "weight": c["weight"],
                "kappa_ci95": [cell.low, cell.high] if cell.n else None,
                "human_alpha": c["ceiling"]["human_alpha"]}, thresholds)
            if cell.gate["applies"]:
                reasons += [f"{key}: {r}" for r in cell.gate["reasons"]]
        if not scope["decides_gate"]:
            reasons.insert(0, "not decided on these items")
        reasons += gate_reasons(row.run, {"failed": row.failed})
        reasons += rescore_reasons(row.run, version)
        row.reasons = reasons
        row.passed = (any(c.gate.get("applies") for c in row.cells.values())
                      and not reasons)
    _sort(rows, sort, descending)
    for row in rows:
        row.ordered = [row.cells.get(c["key"]) for c in criteria]
    if record and view is not None and scope["n_test"] and runs:
        record_looks(split=view.split, looks=[(version.pk, r.pk) for r in runs], user=user,
                     source=source)
    return {"version": version, "dataset": dataset, "criteria": criteria, "rows": rows,
            "scope": scope, "sort": sort, "descending": descending,
            "looks": looks_summary(view.split if view is not None else None),
            "forest": forest(rows, criteria, thresholds)}


def _short(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _sort(rows: list[JudgeRow], sort: str, descending: bool) -> None:
    def key(row: JudgeRow):
        if sort == "name":
            return row.run.name.lower()
        if sort == "failed":
            share = row.failed_share
            return -1.0 if share is None else share
        cell = row.cells.get(sort)
        if cell is None:  # default: judges that pass first, then by their worst kappa
            kappas = [c.kappa for c in row.cells.values() if c.kappa is not None]
            return (row.passed, min(kappas) if kappas else -2.0)
        return -2.0 if cell.kappa is None else cell.kappa

    rows.sort(key=key, reverse=descending)


ROW_HEIGHT = 22
LABEL_WIDTH = 0  # judge names are in the table beside each plot, not in the SVG


def forest(rows: list[JudgeRow], criteria: list[dict], thresholds: Thresholds) -> list[dict]:
    """Per criterion, one row per judge (in the table's order): the point and its interval
    over the Landis-Koch bands, with the gate's lines. Plain numbers for the template's SVG."""
    from apps.calibration.charts import BANDS, WIDTH

    plots = []
    height = ROW_HEIGHT * max(1, len(rows)) + 24
    for c in criteria:
        marks = []
        for position, row in enumerate(rows):
            cell = row.cells.get(c["key"])
            y = 12 + position * ROW_HEIGHT + ROW_HEIGHT / 2
            mark = {"y": y, "name": row.run.name, "kappa": None, "ci": None,
                    "passes": bool(cell and cell.gate.get("passed"))}
            if cell and cell.kappa is not None:
                mark["kappa"] = x_of(cell.kappa)
            if cell and cell.low is not None and cell.high is not None:
                mark["ci"] = (x_of(cell.low), x_of(cell.high))
            marks.append(mark)
        plot = {
            "key": c["key"], "name": c["name"], "width": WIDTH, "height": height,
            "marks": marks,
            "bands": [{"x": x_of(a), "width": round(x_of(b) - x_of(a), 1), "css": f"band-{i}",
                       "name": name} for i, (a, b, name) in enumerate(BANDS)],
            "threshold_x": x_of(thresholds.min_kappa),
            "lower_threshold_x": x_of(thresholds.min_kappa_lower),
            "ticks": [{"x": x_of(t), "label": f"{t:g}"} for t in (0, 0.2, 0.4, 0.6, 0.8, 1.0)],
            "ceiling": (x_of(c["ceiling"]["human_alpha"])
                        if c["ceiling"]["human_alpha"] is not None else None),
        }
        plot["svg"] = forest_svg(plot)
        plots.append(plot)
    return plots


def forest_svg(plot: dict) -> str:
    """The plot's SVG. Judge names are escaped by format_html; the rest are numbers."""
    h = plot["height"]
    parts = [format_html_join("", '<rect class="{}" x="{}" y="0" width="{}" height="{}">'
                              "<title>{}</title></rect>",
                              ((b["css"], b["x"], b["width"], h, b["name"])
                               for b in plot["bands"])),
             format_html('<line class="threshold" x1="{0}" x2="{0}" y1="0" y2="{1}"></line>',
                         plot["threshold_x"], h)]
    if plot["ceiling"] is not None:
        parts.append(format_html('<line class="ceiling" x1="{0}" x2="{0}" y1="0" y2="{1}">'
                                 "</line>", plot["ceiling"], h))
    parts.append(format_html_join("", '<text class="tick" x="{}" y="{}" text-anchor="middle">'
                                  "{}</text>", ((t["x"], h + 12, t["label"])
                                                for t in plot["ticks"])))
    for m in plot["marks"]:
        name = m["name"] if len(m["name"]) <= 24 else m["name"][:23] + "…"
        parts.append(format_html('<text class="forest-label" x="-8" y="{}" '
                                 'text-anchor="end">{}</text>', m["y"] + 4, name))
        if m["ci"]:
            parts.append(format_html('<line class="interval" x1="{0}" x2="{1}" y1="{2}" '
                                     'y2="{2}"></line>', m["ci"][0], m["ci"][1], m["y"]))
        if m["kappa"] is not None:
            parts.append(format_html('<circle class="point{}" cx="{}" cy="{}" r="4.5">'
                                     "<title>{}</title></circle>",
                                     "" if m["passes"] else " point-fail", m["kappa"], m["y"],
                                     m["name"]))
    return mark_safe("".join(parts))  # noqa: S308 (every piece above is format_html output)
