"""Adjudication: the items and criteria where a session's annotators disagree, walked in item
order, and what the owner needs to decide each one.

Reads only. The disagreements are found in the database (one grouped query over the session's
labels: two or more labels, more than one distinct value), never by loading the whole
session, so a page and "the next one after this" cost the same on 100 items or 100,000
(benchmarks/bench_labeling.py, adjudicate_next_p95_ms). A cursor (item id, criterion
position) says where a page starts: saving a gold label may take a row out of the "open" list,
and page numbers would then skip rows.

A row carries each label with its level name, the side the annotator saw on the left
(pairwise), their comment and round, the annotators' majority (marked as such: the gold
select starts blank, never at a level the owner did not choose), and the gold label if any.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    Value,
    When,
)

from apps.calibration.stats import majority
from apps.datasets.models import Item
from apps.labeling.models import GoldLabel, HumanLabel, LabelingSession
from apps.labeling.present import present_item
from apps.labeling.selectors import same_scale, session_criteria
from apps.rubrics import scales

PAGE = 25
SHOW = ("open", "all")  # open: without a gold label yet


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after this item and criterion position (None: the beginning)."""

    item_id: int
    position: int

    def __str__(self) -> str:
        return f"{self.item_id}.{self.position}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        item, sep, position = (text or "").partition(".")
        if not (sep and item.isdigit() and position.isdigit() and len(item) < 12
                and len(position) < 4):
            return None
        return cls(int(item), int(position))


@dataclass
class LabelShown:
    annotator: str
    value: str
    level: str  # the level's name, e.g. "Partly"; "" when it has none
    comment: str
    shown_order: str  # pairwise: "AB" (A on the left), "BA", or "" (not labelled on screen)
    round: int

    @property
    def saw(self) -> str:
        return {"AB": "A left, B right", "BA": "B left, A right"}.get(self.shown_order, "")

    @property
    def side(self) -> str:
        """Pairwise: which side of their screen the annotator picked."""
        if self.shown_order in ("AB", "BA") and self.value in ("A", "B"):
            return "left" if self.shown_order.index(self.value) == 0 else "right"
        return ""


@dataclass
class Disagreement:
    item: Item
    criterion: dict
    position: int  # of the criterion in the rubric
    labels: list[LabelShown]
    choices: list[tuple[str, str]]  # (value, "value — level name"), in scale order
    majority: str | None  # the annotators' majority value, or None (a tie)
    gold: GoldLabel | None = None
    shown: object = None  # present.Shown: the texts as the labelling screen shows them
    error: str = ""
    saved: bool = False
    cursor: Cursor = field(init=False)

    def __post_init__(self):
        self.cursor = Cursor(self.item.pk, self.position)

    @property
    def anchor(self) -> str:
        return f"d-{self.item.pk}-{self.criterion['key']}"

    @property
    def majority_label(self) -> str:
        return next((label for value, label in self.choices if value == self.majority), "")


def level_names(criterion: dict) -> dict[str, str]:
    """Value text -> level name of a criterion's scale (pairwise: "A is better" ...)."""
    out = {}
    for level in criterion["scale"]["levels"]:
        value = scales.value_to_text(level["value"])
        out[value] = level.get("label") or ""
    return out


def _choices(criterion: dict) -> list[tuple[str, str]]:
    names = level_names(criterion)
    return [(value, f"{value} — {name}" if name and name != value else value)
            for value, name in names.items()]


def _order(criteria: list[dict]) -> Case:
    return Case(*(When(criterion_key=c["key"], then=Value(i)) for i, c in enumerate(criteria)),
                output_field=IntegerField())


def _gold_of_group():
    return Exists(GoldLabel.objects.filter(
        item_id=OuterRef("item_id"), criterion_key=OuterRef("criterion_key"),
        scale_signature=OuterRef("scale_signature")))


def _grouped(session: LabelingSession, criteria: list[dict], *, show: str):
    """One row per (item, criterion) of the session with disagreeing labels: two or more, and
    not all the same (lowest != highest: no per-group sort, as a distinct count needs)."""
    labels = HumanLabel.objects.filter(session=session).filter(same_scale(criteria))
    if show == "open":
        labels = labels.filter(~_gold_of_group())
    return (labels.values("item_id", "criterion_key")
            .annotate(position=_order(criteria), n=Count("id"), lo=Min("value"),
                      hi=Max("value"))
            .filter(n__gte=2).exclude(lo=F("hi")))


def disagreement_counts(session: LabelingSession) -> dict[str, int]:
    """{"all": pairs where annotators disagree, "open": those without a gold label yet}, in
    one pass over the session's labels."""
    criteria = session_criteria(session)
    grouped = (HumanLabel.objects.filter(session=session).filter(same_scale(criteria))
               .values("item_id", "criterion_key", "scale_signature")
               .annotate(n=Count("id"), lo=Min("value"), hi=Max("value"),
                         gold=_gold_of_group())
               .filter(n__gte=2).exclude(lo=F("hi")).values("gold"))
    sql, params = grouped.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), count(*) FILTER (WHERE NOT t.gold) "  # noqa: S608
                       f"FROM ({sql}) t", params)
        everything, still_open = cursor.fetchone()
    return {"all": everything, "open": still_open}


def _keys(session: LabelingSession, criteria: list[dict], *, show: str, after: Cursor | None,
          limit: int, only: tuple[int, str] | None = None) -> list[tuple[int, str, int]]:
    rows = _grouped(session, criteria, show=show)
    if only is not None:
        rows = rows.filter(item_id=only[0], criterion_key=only[1])
    if after is not None:
        rows = rows.filter(Q(item_id__gt=after.item_id)
                           | Q(item_id=after.item_id, position__gt=after.position))
    rows = rows.order_by("item_id", "position").values_list("item_id", "criterion_key",
                                                          "position")
    return list(rows[:limit])


def _rows(session: LabelingSession, criteria: list[dict],
          keys: list[tuple[int, str, int]]) -> list[Disagreement]:
    """Everything a page shows for these (item, criterion) pairs, in a fixed number of
    queries (items, labels, gold) whatever their number."""
    if not keys:
        return []
    by_key = {c["key"]: c for c in criteria}
    item_ids = sorted({item_id for item_id, _, _ in keys})
    items = Item.objects.in_bulk(item_ids)
    labels: dict[tuple[int, str], list[LabelShown]] = {}
    names = {c["key"]: level_names(c) for c in criteria}
    rows = (HumanLabel.objects.filter(session=session, item_id__in=item_ids)
            .filter(same_scale(criteria)).order_by("annotator", "round")
            .values_list("item_id", "criterion_key", "annotator", "value", "comment",
                         "shown_order", "round"))
    for item_id, key, annotator, value, comment, order, number in rows:
        labels.setdefault((item_id, key), []).append(LabelShown(
            annotator=annotator, value=value, level=names[key].get(value, ""),
            comment=comment, shown_order=order, round=number))
    gold = {
        (g.item_id, g.criterion_key): g
        for g in GoldLabel.objects.filter(item_id__in=item_ids, criterion_key__in=list(by_key))
        if g.scale_signature == by_key[g.criterion_key]["signature"]
    }
    out = []
    for item_id, key, position in keys:
        item = items.get(item_id)
        if item is None:
            continue
        criterion = by_key[key]
        mine = labels.get((item_id, key), [])
        out.append(Disagreement(
            item=item, criterion=criterion, position=position, labels=mine,
            choices=_choices(criterion), majority=majority([lb.value for lb in mine]),
            gold=gold.get((item_id, key)),
            # Item terms (A and B), as the gold label is stored: both responses, named.
            shown=present_item(item, pairwise=session.is_pairwise, shown_order="AB",
                               item_terms=True),
        ))
    return out


def disagreement_page(session: LabelingSession, *, show: str = "open",
                      after: Cursor | None = None, limit: int = PAGE) -> dict:
    """One page of disagreements from `after` on, and the cursor of the next page."""
    criteria = session_criteria(session)
    keys = _keys(session, criteria, show=show, after=after, limit=limit + 1)
    rows = _rows(session, criteria, keys[:limit])
    return {"rows": rows, "has_next": len(keys) > limit,
            "next": rows[-1].cursor if rows and len(keys) > limit else None}


def disagreement_row(session: LabelingSession, *, item_id: int, criterion_key: str,
                     then_after: Cursor | None = None, show: str = "open",
                     ) -> tuple[Disagreement | None, Disagreement | None]:
    """One (item, criterion) of the session as adjudication shows it (after a save), or None
    if its annotators agree (or it has no labels in this session); and with `then_after` (the
    tail of what the page shows) the first disagreement after it, which the save made room for
    at the end of the queue. Both in one set of queries."""
    criteria = session_criteria(session)
    keys = _keys(session, criteria, show="all", after=None, limit=1,
                 only=(item_id, criterion_key))
    if then_after is not None:
        keys += _keys(session, criteria, show=show, after=then_after, limit=1)
    rows = {(r.item.pk, r.criterion["key"]): r for r in _rows(session, criteria, keys)}
    row = rows.pop((item_id, criterion_key), None)
    following = next(iter(rows.values()), None)
    return row, following
