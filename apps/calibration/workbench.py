"""The alignment workbench: where the judge and the people part, on development items only.

Life of a tuning step:
1. The disagreement view lists development items where a judge's verdict differs from the
   human reference, strongest first, with every label, comment and sample beside the texts.
2. From there an item can go back to labelling, be marked "the rubric is unclear here", or
   become a few-shot example of the draft (development items only; never a text identical to a
   test item).
3. The draft is edited in place and re-scored on development items as a small judge run on the
   workers (the call cache makes unchanged prompts free). The run records the draft it judged;
   an edit during the run makes its verdicts a mix, and it says so.
4. Before / after agreement per criterion, and the items that flipped each way.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.calibration.data import CriterionData, attach_judge, load_criteria
from apps.calibration.models import ItemMark
from apps.calibration.rescore import active_rescore
from apps.calibration.splits import SplitView, ensure_split, item_content_hash
from apps.datasets.models import Dataset, Item
from apps.judging.models import ACTIVE_STATUSES, JudgeRun, Judgment, RunKind
from apps.labeling.models import GoldLabel, HumanLabel
from apps.rubrics import content as content_mod
from apps.rubrics import scales
from apps.rubrics.models import Rubric, RubricNote, RubricVersion
from apps.rubrics.selectors import current_draft, latest_published
from apps.rubrics.services import criterion_save, rubric_draft, rubric_update

PAGE = 20


# -- reading: the disagreement view --------------------------------------------------------

@dataclass
class Filters:
    criterion: str = ""
    annotator: str = ""
    judge_value: str = ""
    human_value: str = ""

    def as_query(self) -> dict:
        return {k: v for k, v in (("criterion", self.criterion), ("annotator", self.annotator),
                                  ("judge_value", self.judge_value),
                                  ("human_value", self.human_value)) if v}


@dataclass
class Row:
    item: Item
    criterion: dict
    strength: float
    reference: object
    judge: object
    rationale: str = ""
    labels: list[dict] = field(default_factory=list)
    gold: dict | None = None
    samples: list[dict] = field(default_factory=list)
    marks: list[ItemMark] = field(default_factory=list)
    orders: tuple | None = None  # pairwise: (AB answer, BA answer) of the first sample

    @property
    def key(self) -> str:
        return self.criterion["key"]


def _distance(scale: dict, a, b) -> float:
    if a == b:
        return 0.0
    if scales.is_numeric(scale):
        return abs(float(a) - float(b))
    if scale["type"] == scales.PAIRWISE and "tie" in (a, b):
        return 0.5  # A against tie is a smaller miss than A against B
    return 1.0


def strength(scale: dict, reference, verdict, orders: list[tuple[str, str]] | None) -> float:
    """How strongly the judge and the people part: levels apart on numeric scales; for pairwise
    runs asked in both orders, the misses of each order added up (0 to 2), so a judge that
    contradicts the people whichever response comes first ranks above one that flips."""
    if scale["type"] == scales.PAIRWISE and orders:
        return sum(_distance(scale, reference, ab) + _distance(scale, reference, ba)
                   for ab, ba in orders) / len(orders)
    return _distance(scale, reference, verdict)


def disagreements(*, data: list[CriterionData], run: JudgeRun, rubric: Rubric,
                  orders: dict, filters: Filters, page: int) -> dict:
    """`data`: the criteria on development items with `run` attached."""
    by_item_orders: dict[tuple[str, int], list[tuple[str, str]]] = defaultdict(list)
    for key, answers in orders.items():
        for item, _, ab, ba in answers:
            by_item_orders[(key, item)].append((ab, ba))
    found = []
    for d in data:
        if filters.criterion and d.key != filters.criterion:
            continue
        ref = d.reference()
        for item, judged in d.judge.items():
            human = ref.get(item)
            if human is None or human == judged:
                continue
            if filters.annotator and filters.annotator not in d.human.get(item, {}):
                continue
            if filters.judge_value and str(judged) != filters.judge_value:
                continue
            if filters.human_value and str(human) != filters.human_value:
                continue
            found.append((strength(d.scale, human, judged, by_item_orders.get((d.key, item))),
                          item, d, human, judged))
    found.sort(key=lambda f: (-f[0], f[1], f[2].key))
    window = found[(page - 1) * PAGE: page * PAGE]
    ids = sorted({f[1] for f in window})
    items = Item.objects.in_bulk(ids)
    keys = [d.key for d in data]
    comments = _labels(ids, data)
    golds = {(i, k): (v, note) for i, k, v, note in GoldLabel.objects.filter(
        item_id__in=ids, criterion_key__in=keys).values_list("item_id", "criterion_key", "value",
                                                              "note")}
    samples: dict[tuple[int, str], list[dict]] = defaultdict(list)
    for s in Judgment.objects.filter(run=run, item_id__in=ids).order_by(
            "criterion_key", "sample", "order").values(
            "item_id", "criterion_key", "sample", "order", "status", "value", "rationale",
            "error_kind"):
        samples[(s["item_id"], s["criterion_key"])].append(s)
    rationales = {(i, k): r for i, k, r in run.verdicts.filter(item_id__in=ids).values_list(
        "item_id", "criterion_key", "rationale")}
    marks: dict[tuple[int, str], list[ItemMark]] = defaultdict(list)
    for mark in ItemMark.objects.filter(rubric=rubric, item_id__in=ids):
        marks[(mark.item_id, mark.criterion_key)].append(mark)
    rows = []
    for score, item_id, d, human, judged in window:
        if item_id not in items:
            continue
        gold = golds.get((item_id, d.key))
        pair_orders = by_item_orders.get((d.key, item_id))
        rows.append(Row(
            item=items[item_id], criterion=d.criterion, strength=score, reference=human,
            judge=judged, rationale=rationales.get((item_id, d.key), ""),
            labels=comments.get((item_id, d.key), []),
            gold={"value": gold[0], "note": gold[1]} if gold else None,
            samples=samples.get((item_id, d.key), []), marks=marks.get((item_id, d.key), []),
            orders=pair_orders[0] if pair_orders else None))
    annotators = sorted({a for d in data for a in d.annotators})
    values = sorted({str(v) for d in data for v in scales.allowed_values(d.scale)
                     if not filters.criterion or d.key == filters.criterion})
    return {"rows": rows, "total": len(found), "page": page,
            "has_next": page * PAGE < len(found), "has_previous": page > 1,
            "filters": filters, "criteria": [d.criterion for d in data],
            "annotators": annotators, "values": values}


def _labels(ids: list[int], data: list[CriterionData]) -> dict:
    """(item, key) -> every label with its annotator and comment, on the criterion's scale."""
    signatures = {d.key: scales.scale_signature(d.scale) for d in data}
    out: dict[tuple[int, str], list[dict]] = defaultdict(list)
    rows = HumanLabel.objects.filter(item_id__in=ids, criterion_key__in=list(signatures)).values(
        "item_id", "criterion_key", "scale_signature", "annotator", "value", "comment")
    for r in rows.order_by("annotator"):
        if signatures[r["criterion_key"]] == r["scale_signature"]:
            out[(r["item_id"], r["criterion_key"])].append(r)
    return out


@dataclass
class Workbench:
    rubric: Rubric
    dataset: Dataset
    version: RubricVersion  # the version whose labels and judge are shown (the run's)
    run: JudgeRun
    split: SplitView | None
    data: list[CriterionData]  # development items, run attached
    orders: dict


def open_workbench(*, rubric: Rubric, dataset: Dataset, run: JudgeRun, user) -> Workbench:
    """Labels and the run's verdicts on development items (the split drawn on first use)."""
    version = run.rubric_version
    data = load_criteria(version, dataset)
    view = ensure_split(version=version, dataset=dataset, data=data, user=user)
    attach_judge(data, run)
    dev = view.dev_ids if view is not None else set()
    from apps.calibration.data import order_answers

    orders = order_answers(run) if run.kind == RunKind.LIVE and dataset.is_pairwise else {}
    orders = {k: [a for a in v if a[0] in dev] for k, v in orders.items()}
    return Workbench(rubric=rubric, dataset=dataset, version=version, run=run, split=view,
                     data=[d.restricted(dev) for d in data], orders=orders)


def judge_choices(rubric: Rubric, dataset: Dataset) -> list[JudgeRun]:
    """Runs the workbench can show: finished judges of published versions, newest first, then
    this rubric's re-scores on this dataset."""
    return list(JudgeRun.objects.filter(rubric_version__rubric=rubric, dataset=dataset)
                .exclude(status__in=ACTIVE_STATUSES)
                .select_related("rubric_version", "rescore").order_by("-created_at")[:50])


# -- writing: bulk actions -----------------------------------------------------------------

def _dev_guard(view: SplitView | None, item_ids) -> None:
    if view is None:
        raise ValidationError("Nothing is labelled yet: there is no development split.")
    test = [i for i in item_ids if view.parts.get(i) != "dev"]
    if test:
        raise ValidationError(f"{len(test)} of the chosen items are not development items: the "
                              "workbench acts on development items only.")


def mark_unclear(*, rubric: Rubric, dataset: Dataset, view: SplitView | None,
                 picks: list[tuple[int, str]], note: str, user) -> int:
    """Flag (item, criterion) pairs as "the rubric is unclear here", with a note; the note also
    joins the rubric's notes for the next revision (listed on its draft)."""
    note = note.strip()
    if not note:
        raise ValidationError({"note": "Say what is unclear: the note is required."})
    if not picks:
        raise ValidationError("Choose at least one item.")
    _dev_guard(view, [i for i, _ in picks])
    names = dict(Item.objects.filter(pk__in=[i for i, _ in picks], dataset=dataset)
                 .values_list("pk", "external_id"))
    if len(names) != len({i for i, _ in picks}):
        raise ValidationError("An item is not in this dataset.")
    keys = sorted({k for _, k in picks})
    with transaction.atomic():
        ItemMark.objects.bulk_create(
            ItemMark(rubric=rubric, item_id=i, criterion_key=k, note=note[:4000],
                     created_by=user) for i, k in picks)
        listed = ", ".join(sorted({names[i] for i, _ in picks}))
        RubricNote.objects.create(
            rubric=rubric, text=note[:4000], criterion_key=keys[0] if len(keys) == 1 else "",
            source=f"unclear on item(s) {listed} of {dataset.name}"[:300], created_by=user)
    return len(picks)


def add_examples(*, rubric: Rubric, dataset: Dataset, view: SplitView | None,
                 data: list[CriterionData], picks: list[tuple[int, str]]) -> int:
    """Make development items few-shot examples of the draft's criteria, with the people's
    reference as the verdict. Never a test item, nor a text identical to a test item's."""
    if not picks:
        raise ValidationError("Choose at least one item.")
    if not dataset.texts_available:
        raise ValidationError(f"The texts of {dataset.name} are not distributed with it: there "
                              "is nothing to show the judge as an example.")
    _dev_guard(view, [i for i, _ in picks])
    items = Item.objects.in_bulk([i for i, _ in picks])
    test_hashes = view.test_hashes
    references = {d.key: d.reference() for d in data}
    added = 0
    with transaction.atomic():
        draft = rubric_draft(rubric=rubric)
        criteria = {c.key: c for c in draft.criteria.all()}
        for item_id, key in picks:
            item = items.get(item_id)
            if item is None or item.dataset_id != dataset.pk:
                raise ValidationError("An item is not in this dataset.")
            if item_content_hash(item.fields(), external_id=item.external_id) in test_hashes:
                raise ValidationError(f"Item {item.external_id} has the same text as a test "
                                      "item: it cannot be an example.")
            criterion = criteria.get(key)
            if criterion is None:
                raise ValidationError(f"The draft has no criterion '{key}'.")
            value = references.get(key, {}).get(item_id)
            if value is None:
                raise ValidationError(f"Item {item.external_id} has no human reference on "
                                      f"{key}.")
            source = f"item {item.external_id} of {dataset.name}"
            examples = list(criterion.examples)
            if any(e.get("source") == source for e in examples):
                continue
            fields = {k: v for k, v in item.fields().items() if v}
            examples.append({**fields, "value": value, "source": source[:300]})
            raw = criterion.as_content() | {"examples": examples}
            try:
                criterion = criterion_save(rubric=rubric, raw=raw, criterion_id=criterion.pk)
            except content_mod.ContentError as exc:
                raise ValidationError(exc.errors) from None
            criteria[key] = criterion
            added += 1
    return added


def remove_example(*, rubric: Rubric, key: str, index: int) -> None:
    draft = rubric_draft(rubric=rubric)
    criterion = draft.criteria.filter(key=key).first()
    if criterion is None or not 0 <= index < len(criterion.examples):
        raise ValidationError("No such example.")
    examples = [e for i, e in enumerate(criterion.examples) if i != index]
    criterion_save(rubric=rubric, criterion_id=criterion.pk,
                   raw=criterion.as_content() | {"examples": examples})


# -- writing: the draft ---------------------------------------------------------------------

def draft_edit(*, rubric: Rubric, task: str, criteria: dict[str, dict]) -> RubricVersion:
    """Change the draft's task, and per criterion its description and anchors (the scale
    itself is changed on the rubric page). Refused while a re-score of the draft runs: its
    verdicts would mix two texts. `criteria`: key -> {"description": ..., "anchors": [...]}."""
    if active_rescore(rubric) is not None:
        raise ValidationError("A re-score of the draft is running: wait for it to finish (or "
                              "cancel it) before editing, or its verdicts would mix two texts.")
    with transaction.atomic():
        draft = rubric_draft(rubric=rubric)
        if task.replace("\r\n", "\n") != draft.description:
            rubric_update(rubric=rubric, name=rubric.name, description=task.replace("\r\n", "\n"),
                          pass_threshold=draft.pass_threshold)
        for criterion in draft.criteria.all():
            change = criteria.get(criterion.key)
            if change is None:
                continue
            raw = criterion.as_content()
            raw["description"] = change.get("description", raw["description"])
            anchors = change.get("anchors") or []
            levels = [dict(level) for level in raw["scale"]["levels"]]
            for level, anchor in zip(levels, anchors, strict=False):
                level["anchor"] = anchor
            raw["scale"] = {"type": raw["scale"]["type"], "levels": levels}
            if raw != criterion.as_content():
                try:
                    criterion_save(rubric=rubric, raw=raw, criterion_id=criterion.pk)
                except content_mod.ContentError as exc:
                    raise ValidationError(exc.errors) from None
        draft.refresh_from_db()
    return draft


def draft_or_published(rubric: Rubric) -> RubricVersion | None:
    return current_draft(rubric) or latest_published(rubric)


