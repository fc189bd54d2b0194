"""Bias audit: position (pairwise order), length and self-consistency, each with one sentence on
what it means. Works on the data the report already loaded, plus item lengths."""

from __future__ import annotations

from django.db.models.functions import Length

from apps.calibration import stats
from apps.calibration.data import CriterionData
from apps.datasets.models import Dataset, Item
from apps.judging.models import JudgeRun
from apps.rubrics import scales


def _num(value):
    from apps.calibration.report import _num as num

    return num(value)


def _lengths(dataset: Dataset) -> dict[int, tuple[int, int, int]]:
    return {
        pk: (r or 0, a or 0, b or 0)
        for pk, r, a, b in Item.objects.filter(dataset=dataset).annotate(
            lr=Length("response"), la=Length("response_a"), lb=Length("response_b")
        ).values_list("id", "lr", "la", "lb")
    }


def _share(wins: int, decisive: int) -> float | None:
    return wins / decisive if decisive else None


def position_bias(answers: list[tuple[int, int, str, str]]) -> dict:
    """Flip rate under order swap, and how often the response shown first wins, overall and in
    each order: A-first (order AB) and B-first (order BA). A judge without position bias picks
    the first shown about half the time in both; a real preference for A over B shows as one
    order high and the other low, a position bias as both high (or both low)."""
    if not answers:
        return {"available": False,
                "sentence": "Needs a run asked in both orders (imported verdicts are not)."}
    flips = sum(1 for _, _, ab, ba in answers if ab != ba)
    # In order AB the first shown is A; in order BA it is B (answers are in the item's terms).
    first_ab = sum(1 for _, _, ab, _ in answers if ab == "A")
    first_ba = sum(1 for _, _, _, ba in answers if ba == "B")
    decisive_ab = sum(1 for _, _, ab, _ in answers if ab != "tie")
    decisive_ba = sum(1 for _, _, _, ba in answers if ba != "tie")
    share = _share(first_ab + first_ba, decisive_ab + decisive_ba)
    share_ab, share_ba = _share(first_ab, decisive_ab), _share(first_ba, decisive_ba)
    flip_rate = flips / len(answers)
    sentence = (f"The verdict changes with the order in {flip_rate:.0%} of questions. ")
    if share is not None:
        sentence += (f"When it picks a side, it picks the response shown first {share:.0%} of "
                     "the time (50% means no position preference)")
        by_order = []
        if share_ab is not None:
            by_order.append(f"{share_ab:.0%} with A shown first")
        if share_ba is not None:
            by_order.append(f"{share_ba:.0%} with B shown first")
        sentence += f": {', '.join(by_order)}." if by_order else "."
    return {"available": True, "n": len(answers), "flip_rate": _num(flip_rate),
            "first_shown_wins": _num(share), "first_shown_wins_ab": _num(share_ab),
            "first_shown_wins_ba": _num(share_ba), "sentence": sentence}


def length_bias(d: CriterionData, lengths: dict, reference: dict) -> dict:
    """Over the items that have a human reference (the items kappa is computed on), so the
    judge and the humans are compared on the same texts."""
    judged = {i: v for i, v in d.judge.items() if i in reference}
    if not any(sum(v) for v in lengths.values()):
        return {"available": False, "sentence": "No texts in this dataset to measure."}
    if d.scale["type"] == scales.PAIRWISE:
        def longer_wins(values: dict) -> float | None:
            decisive = [(i, v) for i, v in values.items() if v in ("A", "B") and i in lengths
                        and lengths[i][1] != lengths[i][2]]
            if not decisive:
                return None
            wins = sum(1 for i, v in decisive
                       if (v == "A") == (lengths[i][1] > lengths[i][2]))
            return wins / len(decisive)
        judge, human = longer_wins(judged), longer_wins(reference)
        sentence = "Share of decisive verdicts that prefer the longer response: "
        sentence += f"judge {judge:.0%}" if judge is not None else "judge n/a"
        sentence += f", humans {human:.0%}." if human is not None else ", humans n/a."
        if judge is not None and human is not None and judge - human > 0.1:
            sentence += " The judge favours length more than people do."
        return {"available": True, "judge_prefers_longer": _num(judge),
                "humans_prefer_longer": _num(human), "sentence": sentence}
    if not scales.is_numeric(d.scale):
        return {"available": False, "sentence": "Length bias is measured on numeric scales."}

    def rho(values: dict) -> float | None:
        items = [i for i in values if i in lengths]
        if len(items) < 3:
            return None
        return _num(stats.spearman([lengths[i][0] for i in items], [values[i] for i in items]))
    judge, human = rho(judged), rho(reference)
    sentence = ("Spearman correlation of the score with the response's length: judge "
                f"{'n/a' if judge is None else f'{judge:.2f}'}, humans "
                f"{'n/a' if human is None else f'{human:.2f}'}.")
    if judge is not None and human is not None and judge - human > 0.15:
        sentence += " The judge rewards length more than people do."
    return {"available": True, "judge_spearman": judge, "human_spearman": human,
            "sentence": sentence}


def consistency(d: CriterionData, run: JudgeRun) -> dict:
    if run.samples <= 1:
        return {"available": False, "sentence": "One sample per item: ask K > 1 to measure."}
    spreads = list(d.judge_spread.values())
    if not spreads:
        return {"available": False, "samples": run.samples,
                "sentence": f"Verdicts are means of {run.samples} samples; their spread was "
                            "not recorded."}
    unanimous = sum(1 for s in spreads if s == 0) / len(spreads)
    mean = sum(spreads) / len(spreads)
    unit = "standard deviation" if scales.is_numeric(d.scale) else "share of dissenting samples"
    return {"available": True, "samples": run.samples, "unanimous": _num(unanimous),
            "mean_spread": _num(mean),
            "sentence": f"All {run.samples} samples agreed on {unanimous:.0%} of items; the "
                        f"mean {unit} is {mean:.2f}. Low agreement across samples means the "
                        "verdict is partly chance: raise K or sharpen the anchors."}


def bias_audit(data: list[CriterionData], *, run: JudgeRun, dataset: Dataset,
               orders: dict) -> dict:
    lengths = _lengths(dataset)
    humans = {}
    if any(d.scale["type"] == scales.PAIRWISE for d in data):
        # The people's own position bias, from the order each saw (labels made on screen),
        # beside the judge's: the same figures with the left side as "shown first".
        from apps.labeling.models import HumanLabel
        from apps.labeling.position import human_position_bias

        humans = human_position_bias(HumanLabel.objects.filter(item__dataset=dataset),
                                     [d.criterion for d in data])
    out = {}
    for d in data:
        entry = {"length": length_bias(d, lengths, d.reference()),
                 "consistency": consistency(d, run)}
        if d.scale["type"] == scales.PAIRWISE:
            entry["position"] = position_bias(orders.get(d.key, []))
            entry["position"]["humans"] = humans.get(d.key, {"annotators": {}, "all": None})
        out[d.key] = entry
    return out
