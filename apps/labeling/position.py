"""Human position bias on pairwise criteria: how often each annotator picks the response shown
on the left, read from the order recorded on each label made on screen (`shown_order`: "AB"
put response A on the left, "BA" response B).

The same figures as the judge's position audit (apps/calibration/bias.py), with the left side
as "shown first": over decisive answers (A or B, not tie), the share that chose the left side,
overall and in each order. Without a position preference that is about 50 % in both orders; a
real preference for A over B shows as one order high and the other low, a position bias as
both high (or both low). A two-sided binomial test against 50 % says whether the overall share
could be chance.

Every answer counts, whatever its round: each is one look at a pair in a recorded order.
Imported labels have no recorded order and are not counted.
"""

from __future__ import annotations

from django.db.models import QuerySet

from apps.labeling.models import HumanLabel
from apps.rubrics import scales

MIN_DECISIVE = 10  # below this, a share says too little to write a sentence about


def _share(wins: int, decisive: int) -> float | None:
    return round(wins / decisive, 6) if decisive else None


def _p_value(wins: int, decisive: int) -> float | None:
    if not decisive:
        return None
    from scipy.stats import binomtest

    return round(float(binomtest(wins, decisive, 0.5).pvalue), 6)


def _figures(answers: list[tuple[str, str]]) -> dict:
    """answers: (shown order, value in the item's terms)."""
    left_ab = sum(1 for order, value in answers if order == "AB" and value == "A")
    left_ba = sum(1 for order, value in answers if order == "BA" and value == "B")
    decisive_ab = sum(1 for order, value in answers if order == "AB" and value in ("A", "B"))
    decisive_ba = sum(1 for order, value in answers if order == "BA" and value in ("A", "B"))
    wins, decisive = left_ab + left_ba, decisive_ab + decisive_ba
    share = _share(wins, decisive)
    p_value = _p_value(wins, decisive)
    if decisive < MIN_DECISIVE:
        sentence = f"{decisive} decisive answers: too few to say."
    else:
        sentence = (f"Picks the left response {share:.0%} of {decisive} decisive answers "
                    f"(50% means no position preference; p = {p_value:.3g})")
        if p_value < 0.05:
            sentence += ": more often than chance would give."
        else:
            sentence += ": within what chance gives."
    return {
        "answers": len(answers), "decisive": decisive,
        "first_shown_wins": share, "first_shown_wins_ab": _share(left_ab, decisive_ab),
        "first_shown_wins_ba": _share(left_ba, decisive_ba), "p_value": p_value,
        "sentence": sentence,
    }


def human_position_bias(labels: QuerySet[HumanLabel], criteria: list[dict]) -> dict[str, dict]:
    """key -> {"annotators": {name: figures}, "all": figures} for the pairwise criteria among
    `criteria` (each with "key", "scale"), over `labels` (a session's, or a dataset's)."""
    pairwise = {c["key"]: scales.scale_signature(c["scale"]) for c in criteria
                if c["scale"]["type"] == scales.PAIRWISE}
    if not pairwise:
        return {}
    answers: dict[str, dict[str, list]] = {key: {} for key in pairwise}
    rows = labels.filter(criterion_key__in=list(pairwise), shown_order__in=("AB", "BA"))
    for key, signature, annotator, order, value in rows.values_list(
            "criterion_key", "scale_signature", "annotator", "shown_order", "value"):
        if pairwise[key] == signature:
            answers[key].setdefault(annotator, []).append((order, value))
    out = {}
    for key, by_annotator in answers.items():
        everyone = [a for mine in by_annotator.values() for a in mine]
        out[key] = {
            "annotators": {name: _figures(mine) for name, mine in sorted(by_annotator.items())},
            "all": _figures(everyone),
        }
    return out
