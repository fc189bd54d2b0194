"""The locked development / test split of a rubric's labelled items on a dataset.

Life of a split (docs/decisions/0014):
1. The first time a rubric's labels on a dataset are used for calibration, the labelled items
   are grouped by text (same content hash, same group) and drawn into development and test,
   stratified by the reference value of the rubric's main criterion, with a stored seed and
   share (70/30 by default).
2. The draw is stored row by row and never redrawn. An item labelled later joins by a seeded
   hash of its text (the part of an identical text already in the split, if there is one), so
   the parts only grow and never swap items.
3. The workbench, few-shot examples and the optimizer read development items only; the gate
   and the exported calibration read test items only, unless the test part is smaller than
   the gate's n, and then all items, marked as a fallback.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.calibration.data import CriterionData
from apps.calibration.models import CalibrationSplit, Part, SplitItem
from apps.datasets.models import Dataset, Item
from apps.rubrics.content import clean_text
from apps.rubrics.models import RubricVersion

TEXT_FIELDS = ("prompt", "response", "response_a", "response_b", "reference")
LATER = "later"


def item_content_hash(fields: dict, *, external_id: str = "") -> str:
    """sha256 of an item's texts, normalised as a rubric stores an example's texts (no spaces
    at line ends, no blank lines or space around), so an example and the item it was copied
    from hash alike. An item without any text (a dataset whose texts are not distributed) is
    told apart by its id instead, else every such item would be one group."""
    texts = [clean_text(str(fields.get(name) or "")).strip() for name in TEXT_FIELDS]
    material = json.dumps(texts if any(texts) else ["id", external_id], ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _hash_part(seed: int, content_hash: str, test_share: float) -> str:
    draw = int(hashlib.sha256(f"{seed}:{content_hash}".encode()).hexdigest()[:15], 16) / 16**15
    return Part.TEST if draw < test_share else Part.DEV


@dataclass
class SplitView:
    """A split as the report and the workbench use it: item id -> part and content hash."""

    split: CalibrationSplit
    parts: dict[int, str] = field(default_factory=dict)
    hashes: dict[int, str] = field(default_factory=dict)
    created: bool = False
    added: int = 0

    def ids(self, part: str) -> set[int]:
        return {item for item, p in self.parts.items() if p == part}

    @property
    def dev_ids(self) -> set[int]:
        return self.ids(Part.DEV)

    @property
    def test_ids(self) -> set[int]:
        return self.ids(Part.TEST)

    @property
    def test_hashes(self) -> set[str]:
        return {self.hashes[i] for i, p in self.parts.items() if p == Part.TEST}

    def describe(self) -> dict:
        s = self.split
        return {"id": s.pk, "seed": s.seed, "test_share": s.test_share,
                "stratified_by": s.stratified_by or None,
                "ordinal_reference": s.ordinal_reference,
                "created_at": s.created_at.isoformat() if s.created_at else None,
                "n_dev": len(self.dev_ids), "n_test": len(self.test_ids)}


def find_split(version: RubricVersion, dataset: Dataset) -> CalibrationSplit | None:
    return CalibrationSplit.objects.filter(rubric_id=version.rubric_id, dataset=dataset).first()


def labelled_items(data: list[CriterionData]) -> set[int]:
    found: set[int] = set()
    for d in data:
        found.update(d.human)
        found.update(d.gold)
    return found


def main_criterion(data: list[CriterionData]) -> CriterionData | None:
    """The criterion that stratifies the draw: the first one with the largest weight."""
    if not data:
        return None
    top = max(d.criterion["weight"] for d in data)
    return next(d for d in data if d.criterion["weight"] == top)


def _hashes(item_ids: set[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    ids = sorted(item_ids)
    for start in range(0, len(ids), 2000):
        rows = Item.objects.filter(pk__in=ids[start : start + 2000]).values_list(
            "pk", "external_id", *TEXT_FIELDS)
        for pk, external_id, *texts in rows:
            out[pk] = item_content_hash(dict(zip(TEXT_FIELDS, texts, strict=True)),
                                        external_id=external_id)
    return out


def draw(item_ids: set[int], hashes: dict[int, str], strata: dict[int, str], *, seed: int,
         test_share: float) -> dict[int, str]:
    """The first draw: groups of identical text, stratum by stratum, a seeded shuffle, then
    test until the stratum's share (rounded half up) is reached. Pure, for tests."""
    groups: dict[str, list[int]] = defaultdict(list)
    for item in sorted(item_ids):
        groups[hashes[item]].append(item)
    by_stratum: dict[str, list[list[int]]] = defaultdict(list)
    for members in groups.values():
        by_stratum[strata.get(members[0], "")].append(members)
    rng = random.Random(seed)
    parts: dict[int, str] = {}
    for stratum in sorted(by_stratum):
        members = sorted(by_stratum[stratum], key=lambda g: g[0])
        rng.shuffle(members)
        size = sum(len(g) for g in members)
        target = int(test_share * size + 0.5)
        in_test = 0
        for group in members:
            part = Part.TEST if in_test < target else Part.DEV
            if part == Part.TEST:
                in_test += len(group)
            for item in group:
                parts[item] = part
    return parts


def _create(version: RubricVersion, dataset: Dataset, data: list[CriterionData], *, user,
            seed: int, test_share: float, rule: str) -> SplitView:
    labelled = labelled_items(data)
    main = main_criterion(data)
    reference = main.reference() if main is not None else {}
    strata = {item: str(reference.get(item, "none")) for item in labelled}
    hashes = _hashes(labelled)
    parts = draw(labelled, hashes, strata, seed=seed, test_share=test_share)
    split = CalibrationSplit.objects.create(
        rubric_id=version.rubric_id, dataset=dataset, seed=seed, test_share=test_share,
        stratified_by=main.key if main is not None else "", ordinal_reference=rule,
        created_by=user if getattr(user, "is_authenticated", False) else None)
    SplitItem.objects.bulk_create(
        (SplitItem(split=split, item_id=item, part=part, content_hash=hashes[item],
                   stratum=strata[item][:80]) for item, part in parts.items()),
        batch_size=2000)
    return SplitView(split=split, parts=parts, hashes={i: hashes[i] for i in parts},
                     created=True)


_SPLIT_FIELDS = ("id", "rubric_id", "dataset_id", "seed", "test_share", "stratified_by",
                 "ordinal_reference", "created_at", "created_by_id")


def load_split(version: RubricVersion, dataset: Dataset) -> SplitView | None:
    """The stored split with its items in one query (the split's own fields ride along on
    every row: cheaper than a second round trip on a page that counts its queries)."""
    rows = SplitItem.objects.filter(
        split__rubric_id=version.rubric_id, split__dataset=dataset
    ).values_list("item_id", "part", "content_hash", *(f"split__{f}" for f in _SPLIT_FIELDS))
    view = None
    for item, part, digest, *split_fields in rows:
        if view is None:
            view = SplitView(split=CalibrationSplit(**dict(zip(_SPLIT_FIELDS, split_fields,
                                                              strict=True))))
        view.parts[item] = part
        view.hashes[item] = digest
    return view


def _load(split: CalibrationSplit) -> SplitView:
    view = SplitView(split=split)
    for item, part, digest in SplitItem.objects.filter(split=split).values_list(
            "item_id", "part", "content_hash"):
        view.parts[item] = part
        view.hashes[item] = digest
    return view


def _extend(view: SplitView, missing: set[int]) -> None:
    """Items labelled after the draw: the part of their text if it is in the split already,
    else a seeded hash of the text. Concurrent requests compute the same parts."""
    split = view.split
    hashes = _hashes(missing)
    known = {}
    for item, digest in view.hashes.items():
        known.setdefault(digest, view.parts[item])
    rows = []
    for item in sorted(hashes):
        digest = hashes[item]
        part = known.get(digest) or _hash_part(split.seed, digest, split.test_share)
        known.setdefault(digest, part)
        rows.append(SplitItem(split=split, item_id=item, part=part, content_hash=digest,
                              stratum=LATER))
        view.parts[item] = part
        view.hashes[item] = digest
    SplitItem.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    view.added = len(rows)


def ensure_split(*, version: RubricVersion, dataset: Dataset, data: list[CriterionData],
                 user=None, seed: int | None = None, test_share: float | None = None,
                 rule: str | None = None) -> SplitView | None:
    """The split of this rubric on this dataset, drawn now if this is the first use of its
    labels, and grown by the items labelled since. None while nothing is labelled.

    `data` are the version's criteria as loaded for the report, before any reference was
    read: their reference rule is set here to the split's. `seed`, `test_share` and `rule`
    apply only to a split drawn now.
    """
    view = load_split(version, dataset)
    labelled = labelled_items(data)
    if view is None:
        if not labelled:
            return None
        seed = settings.CALIBRATION_SPLIT_SEED if seed is None else seed
        share = settings.CALIBRATION_TEST_SHARE if test_share is None else test_share
        rule = rule or "majority"
        set_rule(data, rule)
        try:
            with transaction.atomic():
                return _create(version, dataset, data, user=user, seed=seed,
                               test_share=share, rule=rule)
        except IntegrityError:
            # Another request drew it at the same moment: theirs is the split.
            split = find_split(version, dataset)
            if split is None:
                raise
            view = _load(split)
    set_rule(data, view.split.ordinal_reference)
    missing = labelled - set(view.parts)
    if missing:
        _extend(view, missing)
    return view


def set_rule(data: list[CriterionData], rule: str) -> None:
    for d in data:
        if d.rule != rule:
            d.rule = rule
            d.__dict__.pop("_reference", None)


def split_set_reference_rule(*, split: CalibrationSplit, rule: str) -> None:
    """Choose how ordinal criteria turn annotators into one reference. Allowed until the first
    look at test results: after that, a change of rule would be one more way to tune on test."""
    from django.core.exceptions import ValidationError

    from apps.calibration.data import RULES
    from apps.calibration.models import TestLook

    if rule not in RULES:
        raise ValidationError({"rule": f"One of {', '.join(RULES)}."})
    with transaction.atomic():
        locked = CalibrationSplit.objects.select_for_update().get(pk=split.pk)
        if locked.ordinal_reference == rule:
            return
        if TestLook.objects.filter(split=locked).exists():
            raise ValidationError({"rule": "Test results of this split have been looked at: "
                                           "the reference rule is locked with the split."})
        CalibrationSplit.objects.filter(pk=split.pk).update(ordinal_reference=rule)
    split.ordinal_reference = rule


def example_leaks(content: dict, view: SplitView | None) -> list[str]:
    """Examples whose text is a test item's (however they got into the draft, a YAML file
    included): they would show the judge held-out items."""
    if view is None:
        return []
    test = view.test_hashes
    problems = []
    for c in content["criteria"]:
        for number, example in enumerate(c.get("examples") or [], 1):
            if item_content_hash(example) in test:
                problems.append(f"{c['key']}: example {number} has the text of a test item")
    return problems
