"""Human agreement within one labelling session, per criterion, with apps.calibration.stats
(the one statistics module): Krippendorff's alpha, Cohen's kappa for every pair of
annotators, and each annotator against the others, so that a careless annotator stands out;
and beside it each annotator against themselves (test-retest, intra-rater kappa) where the
session gave them items they had labelled before.

Rounds: a session holds one answer per annotator and item (one round), so inter-rater figures
use exactly the session's labels. Intra-rater figures pair each of those with the same
annotator's previous round of the item (docs/decisions/0009-label-rounds.md).

Weighting follows the calibration report (docs/decisions/0003): quadratic kappa and ordinal
alpha for ordinal scales, unweighted kappa and nominal alpha for everything else.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from apps.calibration import stats
from apps.labeling.models import HumanLabel, LabelingSession
from apps.labeling.selectors import same_scale, session_criteria
from apps.rubrics import scales

# An annotator whose mean kappa with the others is this far below the others' median is
# flagged. 0.2 is one Landis-Koch band: "moderate" among peers who are "substantial".
STANDS_OUT_GAP = 0.2


def _num(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


@dataclass
class PairKappa:
    first: str
    second: str
    n: int
    kappa: float | None


@dataclass
class AnnotatorAgreement:
    name: str
    n_items: int
    mean_kappa: float | None  # mean of their kappas with each other annotator
    n_vs_majority: int  # items where the others had a majority
    agreement_vs_majority: float | None
    kappa_vs_majority: float | None
    stands_out: bool = False


@dataclass
class CriterionAgreement:
    key: str
    name: str
    scale_type: str
    level: str  # "ordinal" or "nominal", for alpha
    weighting: str  # for kappa: "quadratic" or "none"
    annotators: list[str]
    n_items: int  # items with labels of two or more annotators
    alpha: float | None = None
    alpha_words: str = "undefined"
    pairs: list[PairKappa] = field(default_factory=list)
    per_annotator: list[AnnotatorAgreement] = field(default_factory=list)
    # Test-retest: annotator -> {"n", "agreement", "kappa", "kappa_words"} (intra_rater()).
    retest: dict[str, dict] = field(default_factory=dict)


def intra_rater(pairs: dict[str, list[tuple]], scale: dict) -> dict[str, dict]:
    """Each annotator against their own earlier answers: `pairs` maps an annotator to
    (earlier value, later value) per item. Same weighting as inter-rater kappa (quadratic for
    ordinal scales, none otherwise), so the two can be read side by side."""
    labels = scales.allowed_values(scale)
    weights = "quadratic" if scale["type"] == scales.ORDINAL else None
    out = {}
    for name in sorted(pairs):
        earlier = [a for a, _ in pairs[name]]
        later = [b for _, b in pairs[name]]
        kappa = _num(stats.cohen_kappa(earlier, later, labels=labels, weights=weights))
        out[name] = {
            "n": len(later),
            "agreement": _num(stats.percent_agreement(earlier, later)),
            "kappa": kappa,
            "kappa_words": stats.landis_koch(math.nan if kappa is None else kappa),
        }
    return out


def _earlier_rounds(session: LabelingSession, criteria: list[dict]) -> dict[str, dict]:
    """key -> annotator -> [(previous round's value, this session's value)] for the session's
    labels that are a repeat (round > 1) of the same annotator's earlier label."""
    by_key = {c["key"]: c for c in criteria}
    repeats = list(HumanLabel.objects.filter(session=session, round__gt=1).values_list(
        "criterion_key", "scale_signature", "item_id", "annotator", "value", "round"))
    out: dict[str, dict] = {key: {} for key in by_key}
    if not repeats:
        return out
    history: dict[tuple, dict[int, str]] = {}
    earlier = HumanLabel.objects.filter(
        item_id__in={r[2] for r in repeats}, annotator__in={r[3] for r in repeats},
    ).filter(same_scale(criteria)).values_list("criterion_key", "item_id", "annotator", "round",
                                               "value")
    for key, item_id, annotator, number, text in earlier:
        history.setdefault((key, item_id, annotator), {})[number] = text
    for key, signature, item_id, annotator, text, number in repeats:
        criterion = by_key.get(key)
        if criterion is None or criterion["signature"] != signature:
            continue
        before = [r for r in history.get((key, item_id, annotator), {}) if r < number]
        if not before:
            continue
        try:
            pair = (scales.coerce_value(criterion["scale"],
                                        history[(key, item_id, annotator)][max(before)]),
                    scales.coerce_value(criterion["scale"], text))
        except ValueError:
            continue
        out[key].setdefault(annotator, []).append(pair)
    return out


def _load(session: LabelingSession, criteria: list[dict]) -> dict[str, dict[int, dict]]:
    """key -> item id -> annotator -> value (read on the scale)."""
    by_key = {c["key"]: c for c in criteria}
    out: dict[str, dict[int, dict]] = {key: {} for key in by_key}
    rows = HumanLabel.objects.filter(session=session).values_list(
        "criterion_key", "scale_signature", "item_id", "annotator", "value")
    for key, signature, item_id, annotator, text in rows:
        criterion = by_key.get(key)
        if criterion is None or criterion["signature"] != signature:
            continue
        try:
            value = scales.coerce_value(criterion["scale"], text)
        except ValueError:
            continue
        out[key].setdefault(item_id, {})[annotator] = value
    return out


def _criterion(criterion: dict, human: dict[int, dict]) -> CriterionAgreement:
    scale = criterion["scale"]
    labels = scales.allowed_values(scale)
    ordinal = scale["type"] == scales.ORDINAL
    weights = "quadratic" if ordinal else None
    annotators = sorted({a for values in human.values() for a in values})
    shared = {i: v for i, v in human.items() if len(v) >= 2}
    result = CriterionAgreement(
        key=criterion["key"], name=criterion.get("name") or criterion["key"],
        scale_type=scale["type"], level="ordinal" if ordinal else "nominal",
        weighting=weights or "none", annotators=annotators, n_items=len(shared),
    )
    if len(annotators) < 2 or not shared:
        return result
    items = sorted(shared)
    matrix = [[shared[i].get(a) for a in annotators] for i in items]
    result.alpha = _num(stats.krippendorff_alpha(matrix, level=result.level,
                                                 value_domain=labels))
    if result.alpha is not None:
        result.alpha_words = stats.landis_koch(result.alpha)
    kappas = stats.pairwise_kappas(matrix, weights=weights, labels=labels)
    mine: dict[str, list[float]] = {a: [] for a in annotators}
    for (i, j), kappa in kappas.items():
        n = sum(1 for row in matrix if row[i] is not None and row[j] is not None)
        value = _num(kappa) if n else None
        result.pairs.append(PairKappa(annotators[i], annotators[j], n, value))
        if value is not None:
            mine[annotators[i]].append(value)
            mine[annotators[j]].append(value)
    for name in annotators:
        theirs, others_majority = [], []
        for values in human.values():
            if name not in values:
                continue
            majority = stats.majority([v for a, v in values.items() if a != name])
            if majority is not None:
                theirs.append(values[name])
                others_majority.append(majority)
        result.per_annotator.append(AnnotatorAgreement(
            name=name,
            n_items=sum(1 for values in human.values() if name in values),
            mean_kappa=statistics.fmean(mine[name]) if mine[name] else None,
            n_vs_majority=len(theirs),
            agreement_vs_majority=(_num(stats.percent_agreement(theirs, others_majority))
                                   if theirs else None),
            kappa_vs_majority=(_num(stats.cohen_kappa(theirs, others_majority, labels=labels,
                                                      weights=weights)) if theirs else None),
        ))
    _flag(result.per_annotator)
    return result


def _flag(rows: list[AnnotatorAgreement]) -> None:
    """Mark annotators far below their peers. Needs three or more: between two annotators a
    low kappa says they disagree, not which of them is careless."""
    scored = [r for r in rows if r.mean_kappa is not None]
    if len(scored) < 3:
        return
    for row in scored:
        peers = [r.mean_kappa for r in scored if r is not row]
        row.stands_out = row.mean_kappa < statistics.median(peers) - STANDS_OUT_GAP


def session_agreement(session: LabelingSession) -> list[CriterionAgreement]:
    criteria = session_criteria(session)
    labels = _load(session, criteria)
    retest = _earlier_rounds(session, criteria)
    out = []
    for c in criteria:
        figures = _criterion(c, labels[c["key"]])
        figures.retest = intra_rater(retest[c["key"]], c["scale"])
        out.append(figures)
    return out
