"""The calibration report: how far one judge agrees with the humans on one rubric version and
one dataset, criterion by criterion, with the human ceiling, the aggregate reward and the gate.

Definitions and choices are in docs/calibration.md and docs/decisions/0003.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from django.utils import timezone

from apps.calibration import stats
from apps.calibration.data import CriterionData, attach_judge, load_criteria, order_answers
from apps.calibration.words import kappa_sentence
from apps.datasets.models import Dataset
from apps.judging import scoring
from apps.judging.models import JudgeRun, RunKind
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
    """Agreement among the humans themselves: the most a judge can be shown to reach."""
    labels = scales.allowed_values(d.scale)
    ordinal = d.scale["type"] == scales.ORDINAL
    out = {"annotators": d.annotators, "human_alpha": None, "human_fleiss_kappa": None,
           "human_pair_kappas": {}, "human_icc1": None, "human_icc1k": None,
           "alpha_with_judge": None}
    if len(d.annotators) < 2:
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
        "judge_distribution": {str(v): sum(1 for x in d.judge.values() if x == v)
                               for v in labels},
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
    if len(r["annotators"]) < 2:
        warnings.append("Fewer than two annotators: the human ceiling (how far people agree "
                        "with each other) is unknown.")
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
    return JudgeRun.objects.filter(rubric_version=version, dataset=dataset).order_by(
        "kind", "name", "-created_at")


ROUNDS_WORDS = {
    "latest": "each annotator's latest round of an item (earlier rounds only for test-retest)",
    "first": "each annotator's first round of an item (later rounds only for test-retest)",
}


def load_inputs(version: RubricVersion, dataset: Dataset, run: JudgeRun | None, *,
                rounds: str = "latest"):
    """Labels, gold and the judge's verdicts (and both-order answers for pairwise live runs)."""
    data = load_criteria(version, dataset, rounds=rounds)
    orders: dict = {}
    if run is not None:
        attach_judge(data, run)
        if run.kind == RunKind.LIVE and dataset.is_pairwise:
            orders = order_answers(run)
    return data, orders


def calibration_report(*, version: RubricVersion, dataset: Dataset, run: JudgeRun | None,
                       thresholds: Thresholds | None = None, with_bias: bool = True,
                       inputs: tuple | None = None, rounds: str = "latest") -> dict:
    """The whole report as JSON-ready data (the dashboard, the command and the API use it).

    `inputs` (from load_inputs, with the same `rounds`) lets a page that also lists
    disagreements load the data once. `rounds`: which of an annotator's repeated labels count
    ("latest" or "first"); the report names the rule.
    """
    thresholds = thresholds or Thresholds.for_project(dataset.project)
    data, orders = (inputs if inputs is not None
                    else load_inputs(version, dataset, run, rounds=rounds))
    criteria = {
        d.key: criterion_report(d, thresholds=thresholds, order_pairs=orders.get(d.key))
        for d in data
    }
    applicable = [c for c in criteria.values() if c["gate"]["applies"]]
    reasons = [f"{key}: {reason}" for key, c in criteria.items() if c["gate"]["applies"]
               for reason in c["gate"]["reasons"]]
    if run is None:
        reasons.insert(0, "no judge chosen")
    report = {
        "rubric": version.rubric.slug,
        "rubric_name": version.rubric.name,
        "version": version.number,
        "version_hash": version.content_hash,
        "mode": version.rubric.mode,
        "dataset": dataset.name,
        "dataset_id": dataset.pk,
        "dataset_size": dataset.item_count,
        "judge": None if run is None else {
            "name": run.name, "run": run.pk, "kind": run.kind, "model": run.model or None,
            "samples": run.samples, "status": run.status,
        },
        "generated_at": timezone.now().isoformat(),
        "thresholds": thresholds.as_dict(),
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
