"""The calibration report: how far one judge agrees with the humans on one rubric version and
one dataset, criterion by criterion, with the human ceiling, the aggregate reward and the gate.

Definitions and choices are in docs/calibration.md and docs/decisions/0003.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

from django.utils import timezone

from apps.calibration import stats
from apps.calibration.data import (
    CriterionData,
    attach_judge,
    load_criteria,
    order_answers,
)
from apps.calibration.looks import looks_summary, record_looks
from apps.calibration.splits import SplitView, ensure_split
from apps.calibration.words import kappa_sentence
from apps.datasets.models import Dataset
from apps.judging import scoring
from apps.judging.models import JudgeRun, RunKind
from apps.judging.outcome import gate_reasons, run_failure_counts
from apps.labeling.agreement import intra_rater
from apps.projects.models import Project
from apps.rubrics import scales
from apps.rubrics.models import RubricVersion

BOOTSTRAP_RESAMPLES = 1000


@dataclass(frozen=True)
class Thresholds:
    min_n: int
    min_kappa_lower: float
    min_kappa: float
    min_human_alpha: float

    @classmethod
    def for_project(cls, project: Project) -> Thresholds:
        return cls(project.gate_min_n, project.gate_min_kappa_lower, project.gate_min_kappa,
                   project.gate_min_human_alpha)

    def as_dict(self) -> dict:
        return {"min_n": self.min_n, "min_kappa_lower": self.min_kappa_lower,
                "min_kappa": self.min_kappa, "min_human_alpha": self.min_human_alpha}


def _num(value) -> float | None:
    """JSON has no NaN: an undefined statistic is null."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else round(value, 6)


def weighting_for(scale: dict) -> str | None:
    # Ordinal levels: quadratic weights (near misses cost little); categories, binary and
    # preferences: unweighted (every disagreement is a disagreement). docs/decisions/0003.
    return "quadratic" if scale["type"] == scales.ORDINAL else None


def _pairs(left: dict, right: dict) -> tuple[list, list]:
    items = sorted(i for i in left if i in right)
    return [left[i] for i in items], [right[i] for i in items]


def _kappa(a, b, labels, weights):
    if not a:
        return None
    return _num(stats.cohen_kappa(a, b, labels=labels, weights=weights))


def _words(kappa: float | None) -> str:
    """The Landis-Koch band of a kappa that may be null (undefined)."""
    return stats.landis_koch(math.nan if kappa is None else kappa)


def human_ceiling(d: CriterionData) -> dict:
    """Agreement among the humans themselves: the most a judge can be shown to reach.

    It needs items labelled by two annotators or more; several annotators who each labelled
    different items give no ceiling at all, and the report says so (`human_ceiling_unknown`).
    """
    labels = scales.allowed_values(d.scale)
    ordinal = d.scale["type"] == scales.ORDINAL
    multi = sum(1 for values in d.human.values() if len(values) >= 2)
    out = {"annotators": d.annotators, "human_alpha": None, "human_fleiss_kappa": None,
           "human_pair_kappas": {}, "human_icc1": None, "human_icc1k": None,
           "alpha_with_judge": None, "items_with_two_labels": multi,
           "human_ceiling_unknown": None}
    if len(d.annotators) < 2:
        out["human_ceiling_unknown"] = ("one annotator: how far people agree with each other "
                                        "is unknown")
        return out
    if multi == 0:
        out["human_ceiling_unknown"] = (f"{len(d.annotators)} annotators, but every item has "
                                        "one label: how far people agree with each other is "
                                        "unknown")
        return out
    items, matrix = d.ratings_matrix()
    level = "ordinal" if ordinal else "nominal"
    out["human_alpha"] = _num(stats.krippendorff_alpha(matrix, level=level, value_domain=labels))
    out["human_fleiss_kappa"] = _num(stats.fleiss_kappa(matrix))
    pair = stats.pairwise_kappas(matrix, weights=weighting_for(d.scale), labels=labels)
    out["human_pair_kappas"] = {
        f"{d.annotators[i]} ~ {d.annotators[j]}": _num(k) for (i, j), k in pair.items()
    }
    if ordinal:
        complete = [row for row in matrix if all(v is not None for v in row)]
        if len(complete) >= 2:
            icc, icck = stats.icc1(complete)
            out["human_icc1"], out["human_icc1k"] = _num(icc), _num(icck)
    if d.judge:
        with_judge = [row + [d.judge.get(item)] for item, row in zip(items, matrix, strict=True)]
        out["alpha_with_judge"] = _num(
            stats.krippendorff_alpha(with_judge, level=level, value_domain=labels))
    return out


def _flip_rate(answers: list[tuple[int, int, str, str]]) -> float | None:
    if not answers:
        return None
    return _num(sum(1 for _, _, ab, ba in answers if ab != ba) / len(answers))


def criterion_report(d: CriterionData, *, thresholds: Thresholds,
                     order_pairs: list | None = None, seed: int = 0) -> dict:
    scale = d.scale
    labels = scales.allowed_values(scale)
    weights = weighting_for(scale)
    reference = d.reference()
    human, judge = _pairs(reference, d.judge)
    n = len(human)
    # The judge's own figures (distribution, "never answers", length bias) are taken over the
    # items kappa is computed on: those with a human reference.
    judged = {i: v for i, v in d.judge.items() if i in reference}
    report: dict = {
        "name": d.criterion["name"], "weight": d.criterion["weight"], "scale": scale["type"],
        "labels": labels, "n": n, "n_with_reference": len(reference),
        "n_with_verdict": len(d.judge), "n_gold": len(d.gold),
        "agreement": None, "kappa": None, "kappa_weighting": weights or "none",
        "kappa_ci95": None, "kappa_words": "undefined",
        "confusion_matrix": {"labels": labels, "matrix": [[0] * len(labels) for _ in labels],
                             "rows": "human reference", "columns": "judge"},
        "kappa_vs_annotators": {},
        "reference_distribution": {str(v): sum(1 for x in reference.values() if x == v)
                                   for v in labels},
        "judge_distribution": {str(v): sum(1 for x in judged.values() if x == v)
                               for v in labels},
        "reference_rule": d.effective_rule,
        "reference_dropped": d.reference_drops(),
    }
    if n:
        report["agreement"] = _num(stats.percent_agreement(human, judge))
        report["kappa"] = _kappa(human, judge, labels, weights)
        low, high = stats.bootstrap_kappa_ci(human, judge, labels=labels, weights=weights,
                                             n_resamples=BOOTSTRAP_RESAMPLES, seed=seed)
        report["kappa_ci95"] = [_num(low), _num(high)]
        report["kappa_words"] = _words(report["kappa"])
        report["confusion_matrix"]["matrix"] = stats.confusion(human, judge, labels=labels)
        if scale["type"] == scales.ORDINAL:
            report["kappa_linear"] = _kappa(human, judge, labels, "linear")
            report["kappa_unweighted"] = _kappa(human, judge, labels, None)
    for annotator in d.annotators:
        theirs = {i: v[annotator] for i, v in d.human.items() if annotator in v}
        a, b = _pairs(theirs, d.judge)
        kappa = _kappa(a, b, labels, weights)
        report["kappa_vs_annotators"][annotator] = {"n": len(a), "kappa": kappa,
                                                    "kappa_words": _words(kappa)}
    report.update(human_ceiling(d))
    # Beside the humans' agreement with each other: each one's agreement with themselves.
    report["intra_rater"] = intra_rater(d.retest, scale)
    report["rounds_left_out"] = d.rounds_left_out
    if d.judge_flag:
        kept = {i: v for i, v in d.judge.items() if i not in d.judge_flag}
        a, b = _pairs(reference, kept)
        report["flagged_verdicts"] = {
            "count": len(d.judge_flag),
            "kinds": sorted(set(d.judge_flag.values())),
            "kappa_without_flagged": _kappa(a, b, labels, weights),
            "n_without_flagged": len(a),
        }
    if scale["type"] == scales.PAIRWISE:
        scores = stats.classification_scores(human, judge, labels=labels) if n else {}
        for name in ("accuracy", "macro_precision", "macro_recall", "macro_f1"):
            report[name] = _num(scores.get(name)) if scores else None
        report["flip_rate"] = _flip_rate(order_pairs or [])
    report["sentence"] = kappa_sentence(report)
    report["warnings"] = criterion_warnings(report, thresholds)
    report["gate"] = criterion_gate(report, thresholds)
    return report


def criterion_warnings(r: dict, t: Thresholds) -> list[str]:
    warnings = []
    if r["n"] == 0:
        warnings.append("No item has both a human reference and a verdict.")
    elif r["n"] < t.min_n:
        warnings.append(f"Small sample: n = {r['n']} (< {t.min_n}); the interval is wide and "
                        "the kappa may change a lot with more labels.")
    missing = [v for v, c in r["reference_distribution"].items() if c == 0]
    if r["n"] and missing:
        warnings.append(f"The human reference never uses {', '.join(missing)}: kappa cannot "
                        "show whether the judge recognises those classes.")
    used = [v for v, c in r["reference_distribution"].items() if c]
    unused = [v for v in used if not r["judge_distribution"].get(v)]
    if r["n"] and unused:
        warnings.append(f"The judge never answers {', '.join(unused)}, which the humans use: "
                        "it cannot recognise those classes, whatever its agreement.")
    if r.get("human_ceiling_unknown"):
        warnings.append(f"Human ceiling unknown: {r['human_ceiling_unknown']}. Have some items "
                        "labelled by two annotators (a labelling session with overlap 2).")
    elif r["human_alpha"] is not None and r["human_alpha"] < t.min_human_alpha:
        warnings.append(f"The humans agree only alpha = {r['human_alpha']:.2f} among "
                        "themselves: too low a ceiling to calibrate a judge against; clarify "
                        "the criterion and its anchors first.")
    if r.get("flagged_verdicts"):
        f = r["flagged_verdicts"]
        without = f["kappa_without_flagged"]
        shown = "undefined" if without is None else f"{without:.3f}"
        warnings.append(f"{f['count']} verdicts are flagged ({', '.join(f['kinds'])}); "
                        f"without them kappa would be {shown}.")
    dropped = r.get("reference_dropped") or {}
    if r["reference_rule"] == "majority" and dropped.get("majority"):
        median = dropped.get("median")
        alternative = (f" (the median rule would keep {dropped['majority'] - median} of them)"
                       if median is not None else "")
        warnings.append(f"{dropped['majority']} labelled items have no majority among their "
                        f"annotators and are left out{alternative}.")
    return warnings


def criterion_gate(r: dict, t: Thresholds) -> dict:
    reasons = []
    if r["n"] < t.min_n:
        reasons.append(f"n = {r['n']} is below {t.min_n}")
    if r["kappa"] is None:
        reasons.append("kappa is undefined")
    else:
        if r["kappa"] < t.min_kappa:
            reasons.append(f"kappa {r['kappa']:.3f} is below {t.min_kappa}")
        low = r["kappa_ci95"][0] if r["kappa_ci95"] else None
        if low is None or low < t.min_kappa_lower:
            shown = "undefined" if low is None else f"{low:.3f}"
            reasons.append(f"the 95% interval's lower bound {shown} is below "
                           f"{t.min_kappa_lower}")
    if r["human_alpha"] is not None and r["human_alpha"] < t.min_human_alpha:
        reasons.append(f"the humans' own agreement (alpha {r['human_alpha']:.3f}) is below "
                       f"{t.min_human_alpha}")
    if r["weight"] <= 0:
        return {"passed": True, "applies": False, "reasons": ["carries no weight"]}
    return {"passed": not reasons, "applies": True, "reasons": reasons}


def _item_scores(data: list[CriterionData], source: str) -> dict[int, Fraction]:
    """Each item's reward from the judge's verdicts or the human reference, exactly (the
    bundle's own function, apps/judging/scoring.py); items without a value on every weighted
    criterion have none."""
    per = {d.key: d.reference() if source == "human" else d.judge
           for d in data if d.criterion["weight"] > 0}
    if not per:
        return {}
    criteria = [d.criterion for d in data]
    common = set.intersection(*(set(values) for values in per.values()))
    return {item: scoring.weighted_reward(criteria, {key: values[item]
                                                     for key, values in per.items()})
            for item in common}


def aggregate_report(data: list[CriterionData], threshold: float) -> dict:
    """The reward as the trainer will see it: weighted mean of criterion scores in [0, 1]."""
    judge = _item_scores(data, "judge")
    human = _item_scores(data, "human")
    h, j = _pairs(human, judge)
    out = {"n": len(h), "spearman": None, "pass_threshold": threshold,
           "pass_agreement": None, "true_positive_rate": None, "false_positive_rate": None,
           "pass_confusion": None}
    if len(h) < 2:
        return out
    # Equal exact rewards are equal floats, so rank ties stay ties.
    out["spearman"] = _num(stats.spearman([float(x) for x in h], [float(x) for x in j]))
    hp = [scoring.passes(x, threshold) for x in h]
    jp = [scoring.passes(x, threshold) for x in j]
    tp = sum(1 for a, b in zip(hp, jp, strict=True) if a and b)
    fn = sum(1 for a, b in zip(hp, jp, strict=True) if a and not b)
    fp = sum(1 for a, b in zip(hp, jp, strict=True) if not a and b)
    tn = len(h) - tp - fn - fp
    out["pass_agreement"] = _num((tp + tn) / len(h))
    out["true_positive_rate"] = _num(tp / (tp + fn)) if tp + fn else None
    out["false_positive_rate"] = _num(fp / (fp + tn)) if fp + tn else None
    out["pass_confusion"] = {"human_pass_judge_pass": tp, "human_pass_judge_fail": fn,
                             "human_fail_judge_pass": fp, "human_fail_judge_fail": tn}
    return out


def judges_for(version: RubricVersion, dataset: Dataset):
    """The judges of a version on a dataset; workbench re-scores (drafts on development items)
    live in the workbench, not among the judges a report or an export may choose."""
    return JudgeRun.objects.filter(rubric_version=version, dataset=dataset,
                                   rescore__isnull=True).order_by("kind", "name", "-created_at")


ROUNDS_WORDS = {
    "latest": "each annotator's latest round of an item (earlier rounds only for test-retest)",
    "first": "each annotator's first round of an item (later rounds only for test-retest)",
}


class Inputs(NamedTuple):
    """What a report is computed from: every criterion's labels with the judge attached (all
    items), the pairwise both-order answers, and the split (None while nothing is labelled)."""

    data: list[CriterionData]
    orders: dict
    split: SplitView | None


def load_inputs(version: RubricVersion, dataset: Dataset, run: JudgeRun | None, *,
                user=None, rounds: str = "latest") -> Inputs:
    """Labels, gold, the split (drawn on first use) and the judge's verdicts; `rounds`: which
    of an annotator's repeated labels of an item count."""
    data = load_criteria(version, dataset, rounds=rounds)
    view = ensure_split(version=version, dataset=dataset, data=data, user=user)
    orders: dict = {}
    if run is not None:
        attach_judge(data, run)
        if run.kind == RunKind.LIVE and dataset.is_pairwise:
            orders = order_answers(run)
    return Inputs(data, orders, view)


PARTS = ("test", "dev", "all")


def choose_scope(view: SplitView | None, part: str, thresholds: Thresholds) -> dict:
    """Which items a report covers, and whether it decides the gate.

    The gate is decided on the test part; when the test part holds fewer items than the gate's
    n, on all labelled items instead, marked as a fallback (their development items may have
    been tuned on). A report on development items, or on all items while the test part is big
    enough, shows numbers but decides nothing.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}")
    n_test = len(view.test_ids) if view is not None else 0
    n_dev = len(view.dev_ids) if view is not None else 0
    fallback = n_test < thresholds.min_n
    scope = {"part": part, "fallback": False, "decides_gate": False, "items": None,
             "n_items": n_test + n_dev, "n_dev": n_dev, "n_test": n_test, "sentence": ""}
    if part == "test" and not fallback:
        scope.update(items=view.test_ids, n_items=n_test, decides_gate=True,
                     sentence=f"Held-out test items only ({n_test:,} of {n_test + n_dev:,} "
                              "labelled items): nothing was tuned on them.")
    elif part == "dev":
        scope.update(items=view.dev_ids if view is not None else set(), n_items=n_dev,
                     sentence=f"Development items only ({n_dev:,}): the items the workbench "
                              "and the optimizer tune on. The gate is not decided here.")
    else:
        scope.update(part="all", fallback=fallback, decides_gate=fallback)
        if fallback:
            scope["sentence"] = (
                f"Fallback: the test split holds {n_test:,} items, fewer than the gate's "
                f"n = {thresholds.min_n}, so these figures and the gate use all "
                f"{n_test + n_dev:,} labelled items, including development items that may have "
                "been tuned on. Label more items for a held-out gate.")
        else:
            scope["sentence"] = (f"All {n_test + n_dev:,} labelled items, development and test "
                                 "together. The gate is decided on the test items only.")
    return scope


def scoped(inputs: Inputs, scope: dict) -> tuple[list[CriterionData], dict]:
    ids = scope["items"]
    if ids is None:
        return inputs.data, inputs.orders
    data = [d.restricted(ids) for d in inputs.data]
    orders = {key: [a for a in answers if a[0] in ids] for key, answers in inputs.orders.items()}
    return data, orders


def calibration_report(*, version: RubricVersion, dataset: Dataset, run: JudgeRun | None,
                       thresholds: Thresholds | None = None, with_bias: bool = True,
                       inputs: Inputs | None = None, part: str = "test", user=None,
                       source: str = "report", also_seen: tuple[JudgeRun, ...] = (),
                       looks: dict | None = None, rounds: str = "latest") -> dict:
    """The whole report as JSON-ready data (the dashboard, the command and the API use it).

    `part` chooses the items: "test" (the default, what the gate and exports use), "dev" or
    "all". A report that shows test results records a look (`source` says where), also for
    the runs in `also_seen` (a page that shows several judges records them together); pass
    `looks` (a summary already read) to record nothing. `inputs` (from load_inputs, with the
    same `rounds`) lets a page that also lists disagreements load the data once. `rounds`:
    which of an annotator's repeated labels count ("latest" or "first"); the report names
    the rule.
    """
    thresholds = thresholds or Thresholds.for_project(dataset.project)
    inputs = inputs if inputs is not None else load_inputs(version, dataset, run, user=user,
                                                           rounds=rounds)
    scope = choose_scope(inputs.split, part, thresholds)
    data, orders = scoped(inputs, scope)
    criteria = {
        d.key: criterion_report(d, thresholds=thresholds, order_pairs=orders.get(d.key))
        for d in data
    }
    applicable = [c for c in criteria.values() if c["gate"]["applies"]]
    reasons = [f"{key}: {reason}" for key, c in criteria.items() if c["gate"]["applies"]
               for reason in c["gate"]["reasons"]]
    if run is None:
        reasons.insert(0, "no judge chosen")
    if not scope["decides_gate"]:
        reasons.insert(0, f"not decided on {scope['part']} items: the gate is decided on the "
                          "locked test split")
    failures = None if run is None else run_failure_counts([run])[run.pk]
    reasons += gate_reasons(run, failures)
    reasons += rescore_reasons(run, version)
    view = inputs.split
    shows_test = view is not None and scope["part"] in ("test", "all") and scope["n_test"]
    if shows_test and run is not None and looks is None:
        record_looks(split=view.split, user=user, source=source,
                     looks=[(version.pk, r.pk) for r in (run, *also_seen)])
    report = {
        "rubric": version.rubric.slug,
        "rubric_name": version.rubric.name,
        "version": version.number,
        "version_hash": version.content_hash,
        "mode": version.rubric.mode,
        "dataset": dataset.name,
        "dataset_id": dataset.pk,
        "dataset_size": dataset.item_count,
        "texts_available": dataset.texts_available,
        "judge": None if run is None else {
            "name": run.name, "run": run.pk, "kind": run.kind, "model": run.model or None,
            "samples": run.samples, "status": run.status,
            "planned_calls": run.planned_calls if run.kind == RunKind.LIVE else None,
            "failed_calls": failures["failed"] if run.kind == RunKind.LIVE else None,
            "failure_kinds": failures["kinds"] if run.kind == RunKind.LIVE else None,
        },
        "generated_at": timezone.now().isoformat(),
        "thresholds": thresholds.as_dict(),
        "items": {key: scope[key] for key in ("part", "fallback", "decides_gate", "n_items",
                                               "n_dev", "n_test", "sentence")},
        "split": view.describe() if view is not None else None,
        "test_looks": looks if looks is not None else looks_summary(
            view.split if view is not None else None),
        "rounds": {"rule": rounds, "words": ROUNDS_WORDS[rounds],
                   "labels_left_out": sum(d.rounds_left_out for d in data)},
        "criteria": criteria,
        "aggregate": aggregate_report(data, version.pass_threshold),
        "gate": {"passed": run is not None and bool(applicable) and not reasons,
                 "reasons": reasons},
    }
    if with_bias and run is not None:
        from apps.calibration.bias import bias_audit

        report["bias"] = bias_audit(data, run=run, dataset=dataset, orders=orders)
    return report


def rescore_reasons(run: JudgeRun | None, version: RubricVersion | None = None) -> list[str]:
    """A run started before its version was published judged a draft (only the workbench runs
    drafts): the text it judged may differ from the published one, and it judged development
    items. Never evidence for the gate. Decided from timestamps already loaded: no query."""
    if run is None or run.kind != RunKind.LIVE:
        return []  # imported verdicts were not rendered from this rubric's text
    version = version if version is not None and version.pk == run.rubric_version_id else (
        run.rubric_version)
    if version.published_at is None or run.created_at < version.published_at:
        return [f"run #{run.pk} judged a draft of v{version.number} before it was published "
                "(a workbench re-score on development items): run the published version"]
    return []


def judge_comparison(first: Inputs, second: Inputs, scope: dict) -> dict:
    """Per criterion, is `first`'s kappa really different from `second`'s? A paired bootstrap
    over the items both judged that have a reference (docs/decisions/0014)."""
    out = {}
    ids = scope["items"]
    for a, b in zip(first.data, second.data, strict=True):
        if ids is not None:
            a, b = a.restricted(ids), b.restricted(ids)
        ref = a.reference()
        items = sorted(i for i in ref if i in a.judge and i in b.judge)
        result = stats.paired_kappa_difference(
            [ref[i] for i in items], [a.judge[i] for i in items], [b.judge[i] for i in items],
            labels=scales.allowed_values(a.scale), weights=weighting_for(a.scale),
            n_resamples=BOOTSTRAP_RESAMPLES)
        low, high = result["ci95"]
        difference = _num(result["difference"])
        entry = {"n": result["n"], "difference": difference, "ci95": [_num(low), _num(high)],
                 "real": result["excludes_zero"]}
        if difference is None:
            entry["sentence"] = "No item has a reference and both judges' verdicts."
        elif result["excludes_zero"]:
            better = "first" if difference > 0 else "second"
            entry["sentence"] = (f"On the {result['n']} items both judged, the {better} judge's "
                                 f"kappa is higher by {abs(difference):.3f} (95% interval "
                                 f"{low:.3f} to {high:.3f}): the interval excludes 0, so the "
                                 "difference is unlikely to be chance.")
        else:
            entry["sentence"] = (f"On the {result['n']} items both judged, the difference in "
                                 f"kappa is {difference:.3f} (95% interval {low:.3f} to "
                                 f"{high:.3f}): the interval includes 0, so it may be chance.")
        out[a.key] = entry
    return out
