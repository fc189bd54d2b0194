"""Loading what a calibration report compares: human labels, gold labels and one judge's
verdicts for one rubric version and one dataset, criterion by criterion.

Labels belong to (item, criterion key, scale signature), so a version reads exactly the labels
made on the scale it uses (DESIGN.md invariants).

Rounds: an annotator who labelled an item more than once (a repeat session) has one label per
round. The report uses one of them per annotator and item, by a rule it names: the latest
round (the default) or the first; the pairs of each annotator's previous and latest round
give test-retest (intra-rater) agreement (docs/decisions/0009-label-rounds.md).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace

from apps.calibration.stats import majority
from apps.datasets.models import Dataset
from apps.judging.models import JudgeRun, Judgment, JudgmentStatus, Verdict
from apps.labeling.models import GoldLabel, HumanLabel
from apps.rubrics import scales
from apps.rubrics.models import RubricVersion
from apps.rubrics.selectors import version_content

MAJORITY = "majority"
MEDIAN = "median"
RULES = (MAJORITY, MEDIAN)


@dataclass
class CriterionData:
    criterion: dict
    annotators: list[str]
    # item id -> {annotator: value}; values already read on the scale (ints for levels)
    human: dict[int, dict[str, object]]
    gold: dict[int, object]
    judge: dict[int, object] = field(default_factory=dict)
    judge_mean: dict[int, float] = field(default_factory=dict)
    judge_spread: dict[int, float] = field(default_factory=dict)
    judge_flag: dict[int, str] = field(default_factory=dict)
    judge_samples: dict[int, int] = field(default_factory=dict)
    # How annotators become one reference on ordinal scales: "majority" or "median"
    # (docs/decisions/0014); other scales always use the majority.
    rule: str = MAJORITY
    # Annotator -> [(previous round's value, latest round's value)], one pair per item that
    # the annotator labelled in two or more rounds.
    retest: dict[str, list[tuple]] = field(default_factory=dict)
    # Labels of earlier (or, with rounds="first", later) rounds left out by the rounds rule.
    rounds_left_out: int = 0

    @property
    def key(self) -> str:
        return self.criterion["key"]

    @property
    def scale(self) -> dict:
        return self.criterion["scale"]

    @property
    def effective_rule(self) -> str:
        return MEDIAN if self.rule == MEDIAN and self.scale["type"] == scales.ORDINAL else MAJORITY

    def reference(self) -> dict[int, object]:
        """Gold where present, else the annotators' majority (or, for ordinal criteria under
        the median rule, their median); items without either are left out (a tie between
        annotators is no majority). Computed once per criterion."""
        cached = self.__dict__.get("_reference")
        if cached is not None:
            return cached
        combine = _median if self.effective_rule == MEDIAN else _majority
        ref: dict[int, object] = {}
        for item_id in set(self.human) | set(self.gold):
            if item_id in self.gold:
                ref[item_id] = self.gold[item_id]
                continue
            value = combine(list(self.human[item_id].values()))
            if value is not None:
                ref[item_id] = value
        self.__dict__["_reference"] = ref
        return ref

    def reference_drops(self) -> dict[str, int | None]:
        """Items with human labels but no reference, under each rule: what choosing the rule
        costs. The median rule applies to ordinal criteria only (None otherwise)."""
        no_gold = [labels for item, labels in self.human.items() if item not in self.gold]
        by_majority = sum(1 for labels in no_gold if _majority(list(labels.values())) is None)
        by_median = None
        if self.scale["type"] == scales.ORDINAL:
            by_median = sum(1 for labels in no_gold if _median(list(labels.values())) is None)
        return {MAJORITY: by_majority, MEDIAN: by_median}

    def restricted(self, item_ids: set[int]) -> CriterionData:
        """The same criterion on a subset of items (a split's part); the reference is still
        decided item by item, so restricting first or after gives the same values."""
        def keep(mapping: dict) -> dict:
            return {i: v for i, v in mapping.items() if i in item_ids}

        human = keep(self.human)
        present = {name for labels in human.values() for name in labels}
        return replace(self, annotators=[a for a in self.annotators if a in present],
                       human=human, gold=keep(self.gold),
                       judge=keep(self.judge), judge_mean=keep(self.judge_mean),
                       judge_spread=keep(self.judge_spread), judge_flag=keep(self.judge_flag),
                       judge_samples=keep(self.judge_samples))

    def without_judge(self) -> CriterionData:
        return replace(self, judge={}, judge_mean={}, judge_spread={}, judge_flag={},
                       judge_samples={})

    def ratings_matrix(self) -> tuple[list[int], list[list[object]]]:
        """Items with any human label, as rows; one column per annotator (None = missing)."""
        items = sorted(self.human)
        return items, [[self.human[i].get(a) for a in self.annotators] for i in items]


def _median(values: list):
    """The annotators' median level; with an even number of labels the lower of the two middle
    levels, so the reference is always a level some annotator chose (docs/decisions/0014)."""
    if not values:
        return None
    return statistics.median_low(values)


def _majority(values: list):
    # The usual cases (one to three annotators) without building a Counter per item.
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return values[0] if values[0] == values[1] else None
    if len(values) == 3:
        a, b, c = values
        if a == b or a == c:
            return a
        return b if b == c else None
    return majority(values)


def _read(scale: dict, text: str, _cache: dict = {}):  # noqa: B006 (a deliberate memo)
    """A stored text as a value of the scale; texts repeat, so each (scale, text) is read once."""
    key = (scales.scale_signature(scale), text)
    if key not in _cache:
        try:
            _cache[key] = scales.coerce_value(scale, text)
        except ValueError:
            _cache[key] = None  # stored under another scale's rules
        if len(_cache) > 100_000:
            _cache.clear()
    return _cache[key]


def read_value(scale: dict, text: str):
    """A stored text as a value of the scale, None when it is not one (another scale's)."""
    return _read(scale, text)


ROUND_RULES = ("latest", "first")


def load_criteria(version: RubricVersion, dataset: Dataset, *, rule: str = MAJORITY,
                  rounds: str = "latest") -> list[CriterionData]:
    """All criteria's labels in two queries (labels, gold), whatever the number of criteria.

    `rounds` says which of an annotator's repeated labels of an item count: "latest" (the
    default) or "first". Labels of round 1 are the usual case and cost nothing extra: only
    items with a second round keep a per-round history.

    Plain fetches, not .iterator(): on PostgreSQL a server-side cursor makes the planner favour
    fast-start plans, and with fresh statistics after a big import that meant minutes instead of
    a fifth of a second for 150,000 labels (measured in benchmarks/bench_calibration.py).
    """
    if rounds not in ROUND_RULES:
        raise ValueError(f"rounds must be one of {', '.join(ROUND_RULES)}, not {rounds!r}")
    criteria = version_content(version)["criteria"]
    by_key = {
        c["key"]: CriterionData(criterion=c, annotators=[], human={}, gold={}, rule=rule)
        for c in criteria
    }
    signatures = {c["key"]: scales.scale_signature(c["scale"]) for c in criteria}
    annotators: dict[str, set[str]] = {key: set() for key in by_key}
    # (key, item, annotator) -> {round: value}, only where a round other than 1 exists.
    history: dict[tuple, dict[int, object]] = {}
    rows = HumanLabel.objects.filter(
        item__dataset=dataset, criterion_key__in=list(by_key)
    ).values_list("criterion_key", "scale_signature", "item_id", "annotator", "value", "round")
    memo: dict[str, dict[str, object]] = {key: {} for key in by_key}  # text -> value
    for key, signature, item_id, annotator, text, number in rows:
        if signatures[key] != signature:
            continue  # a label made on another scale of this key: not comparable
        target = by_key[key]
        seen = memo[key]
        value = seen[text] if text in seen else seen.setdefault(text, _read(target.scale, text))
        if value is None:
            continue
        slot = target.human.setdefault(item_id, {})
        if number != 1 or annotator in slot:
            rounds_of = history.setdefault((key, item_id, annotator), {})
            if annotator in slot and not rounds_of:
                rounds_of[1] = slot[annotator]  # the round-1 label seen before this one
            rounds_of[number] = value
        slot[annotator] = value
        annotators[key].add(annotator)
    for (key, item_id, annotator), rounds_of in history.items():
        target = by_key[key]
        numbers = sorted(rounds_of)
        chosen = numbers[-1] if rounds == "latest" else numbers[0]
        target.human[item_id][annotator] = rounds_of[chosen]
        target.rounds_left_out += len(numbers) - 1
        if len(numbers) >= 2:
            target.retest.setdefault(annotator, []).append(
                (rounds_of[numbers[-2]], rounds_of[numbers[-1]]))
    gold = GoldLabel.objects.filter(
        item__dataset=dataset, criterion_key__in=list(by_key)
    ).values_list("criterion_key", "scale_signature", "item_id", "value")
    for key, signature, item_id, text in gold:
        if signatures[key] == signature and (value := _read(by_key[key].scale, text)) is not None:
            by_key[key].gold[item_id] = value
    for key, target in by_key.items():
        target.annotators = sorted(annotators[key])
    return list(by_key.values())


def attach_judge(data: list[CriterionData], run: JudgeRun, *, rows=None) -> None:
    """The run's verdicts into `data`; `rows` (criterion key, item, value, mean, spread, flag,
    samples) when the caller read several runs' verdicts in one query."""
    by_key = {d.key: d for d in data}
    if rows is None:
        rows = Verdict.objects.filter(run=run).values_list(
            "criterion_key", "item_id", "value", "mean", "spread", "flag", "n_samples")
    memo: dict[str, dict[str, object]] = {key: {} for key in by_key}  # text -> value
    for key, item_id, text, mean, spread, flag, n in rows:
        target = by_key.get(key)
        if target is None:
            continue
        seen = memo[key]
        value = seen[text] if text in seen else seen.setdefault(text, _read(target.scale, text))
        if value is None:
            continue
        target.judge[item_id] = value
        if mean is not None:
            target.judge_mean[item_id] = mean
        if spread is not None:
            target.judge_spread[item_id] = spread
        if flag:
            target.judge_flag[item_id] = flag
        target.judge_samples[item_id] = n


def order_answers(run: JudgeRun) -> dict[str, list[tuple[int, int, str, str]]]:
    """Pairwise live runs: per criterion, (item, sample, AB answer, BA answer), both in the
    item's terms, for the position-bias audit."""
    pairs: dict[tuple[str, int, int], dict[str, str]] = {}
    rows = Judgment.objects.filter(run=run, status=JudgmentStatus.DONE).exclude(order="")
    for key, item_id, sample, order, value in rows.values_list(
            "criterion_key", "item_id", "sample", "order", "value"):
        pairs.setdefault((key, item_id, sample), {})[order] = value
    out: dict[str, list[tuple[int, int, str, str]]] = {}
    for (key, item_id, sample), orders in pairs.items():
        if "AB" in orders and "BA" in orders:
            out.setdefault(key, []).append((item_id, sample, orders["AB"], orders["BA"]))
    return out
