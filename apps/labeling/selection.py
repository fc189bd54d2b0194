"""Which items a new session's pool holds: all, a seeded random sample, a metadata filter,
items without labels yet, items where a judge run and the human reference disagree, or
items listed by id (the calibration page's "label this item again").

A selection is a small dict, stored on the session as the record of how its items were
chosen, e.g. {"mode": "sample", "size": 200, "seed": 7}.
"""

from __future__ import annotations

import random

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q
from django.db.models.fields.json import KeyTransform

from apps.calibration.stats import majority
from apps.datasets.models import Dataset, Item
from apps.labeling.models import GoldLabel, HumanLabel
from apps.rubrics import scales
from apps.rubrics.models import RubricVersion
from apps.rubrics.selectors import version_content

MODES = {
    "all": "All items",
    "sample": "A random sample of N items (seeded)",
    "filter": "Items whose metadata has key = value",
    "unlabelled": "Items without human labels yet (on this version's criteria)",
    "disagree": "Items where a judge run and the human reference disagree",
    "items": "These items, by id (one per line)",
}
MAX_LISTED_ITEMS = 5000


def _ordered_ids(items) -> list[int]:
    return list(items.order_by("position").values_list("id", flat=True))


def _criteria(version: RubricVersion) -> list[tuple[str, dict, str]]:
    return [(c["key"], c["scale"], scales.scale_signature(c["scale"]))
            for c in version_content(version)["criteria"]]


def parse_filter(text: str) -> tuple[str, str]:
    key, sep, value = (text or "").partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key:
        raise ValidationError({"filter": "Write the filter as key=value, e.g. split=test."})
    return key, value


def _json_candidates(value: str) -> list:
    """The JSON values a typed 'key=value' may mean: the text, and a number or boolean."""
    found: list = [value]
    lowered = value.lower()
    if lowered in ("true", "false"):
        found.append(lowered == "true")
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        found.append(int(number) if number.is_integer() else number)
    return found


def _metadata_filter(dataset: Dataset, text: str) -> list[int]:
    key, value = parse_filter(text)
    # KeyTransform, not metadata__<key>: a key the user types may contain "__".
    items = Item.objects.filter(dataset=dataset).annotate(meta_value=KeyTransform(key,
                                                                                "metadata"))
    match = Q()
    for candidate in _json_candidates(value):
        match |= Q(meta_value=candidate)
    return _ordered_ids(items.filter(match))


def _unlabelled(dataset: Dataset, version: RubricVersion) -> list[int]:
    same_scale = Q()
    for key, _, signature in _criteria(version):
        same_scale |= Q(criterion_key=key, scale_signature=signature)
    labelled = HumanLabel.objects.filter(same_scale, item=OuterRef("pk"))
    return _ordered_ids(Item.objects.filter(dataset=dataset).filter(~Exists(labelled)))


def _reference(dataset: Dataset, criteria) -> dict[tuple[int, str], object]:
    """(item, key) -> the human reference: gold where present, else the majority of the
    annotators' latest rounds, else none (docs/calibration.md)."""
    by_key = {key: (scale, signature) for key, scale, signature in criteria}
    votes: dict[tuple[int, str], dict[str, tuple[int, object]]] = {}
    labels = HumanLabel.objects.filter(item__dataset=dataset, criterion_key__in=list(by_key))
    for item_id, key, signature, annotator, number, text in labels.values_list(
            "item_id", "criterion_key", "scale_signature", "annotator", "round", "value"):
        scale, wanted = by_key[key]
        if signature != wanted:
            continue
        mine = votes.setdefault((item_id, key), {})
        if annotator not in mine or mine[annotator][0] < number:
            mine[annotator] = (number, _read(scale, text))
    reference = {pair: majority([v for _, v in mine.values()])
                 for pair, mine in votes.items()}
    gold = GoldLabel.objects.filter(item__dataset=dataset, criterion_key__in=list(by_key))
    for item_id, key, signature, text in gold.values_list(
            "item_id", "criterion_key", "scale_signature", "value"):
        scale, wanted = by_key[key]
        if signature == wanted:
            reference[(item_id, key)] = _read(scale, text)
    return {pair: value for pair, value in reference.items() if value is not None}


def _read(scale: dict, text: str):
    try:
        return scales.coerce_value(scale, text)
    except ValueError:
        return None


def _disagree(dataset: Dataset, version: RubricVersion, run_id) -> list[int]:
    # Verdicts are read here only to choose items; nothing of them reaches a labeller's page.
    from apps.judging.models import JudgeRun, Verdict

    run = JudgeRun.objects.filter(pk=run_id, project_id=dataset.project_id,
                                  dataset=dataset).first() if run_id else None
    if run is None:
        raise ValidationError({"run": "Choose a judge run on this dataset."})
    criteria = _criteria(version)
    scale_of = {key: scale for key, scale, _ in criteria}
    reference = _reference(dataset, criteria)
    differ: set[int] = set()
    verdicts = Verdict.objects.filter(run=run, criterion_key__in=list(scale_of))
    for item_id, key, text in verdicts.values_list("item_id", "criterion_key", "value"):
        human = reference.get((item_id, key))
        judged = _read(scale_of[key], text)
        if human is not None and judged is not None and human != judged:
            differ.add(item_id)
    return _ordered_ids(Item.objects.filter(dataset=dataset, pk__in=differ))


def parse_item_list(text: str) -> list[str]:
    """Item ids typed one per line; blank lines and repeats are dropped, order kept."""
    seen: dict[str, None] = {}
    for line in (text or "").splitlines():
        if line.strip():
            seen.setdefault(line.strip(), None)
    return list(seen)


def _listed(dataset: Dataset, external_ids) -> list[int]:
    """The items named by their ids (as in the dataset file), in dataset order. Every id must
    exist: a typo is an error that names it, not a silently smaller session."""
    if (not isinstance(external_ids, list) or not external_ids
            or not all(isinstance(x, str) and x.strip() for x in external_ids)):
        raise ValidationError({"items": "List the items' ids, one per line."})
    if len(external_ids) > MAX_LISTED_ITEMS:
        raise ValidationError({"items": f"At most {MAX_LISTED_ITEMS:,} listed items; for more, "
                                        "use a metadata filter or a sample."})
    wanted = {x.strip() for x in external_ids}
    found = dict(Item.objects.filter(dataset=dataset, external_id__in=wanted)
                 .values_list("external_id", "id"))
    unknown = sorted(wanted - set(found))
    if unknown:
        shown = ", ".join(repr(x) for x in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise ValidationError({"items": f"{len(unknown)} id(s) not in '{dataset.name}': "
                                        f"{shown}"})
    return _ordered_ids(Item.objects.filter(pk__in=found.values()))


def select_item_ids(*, dataset: Dataset, version: RubricVersion, selection: dict) -> list[int]:
    mode = selection.get("mode", "all")
    if mode == "all":
        return _ordered_ids(Item.objects.filter(dataset=dataset))
    if mode == "sample":
        size, seed = selection.get("size"), selection.get("seed", 0)
        if not isinstance(size, int) or size < 1:
            raise ValidationError({"sample_size": "Give the sample's size (1 or more)."})
        ids = _ordered_ids(Item.objects.filter(dataset=dataset))
        if size >= len(ids):
            return ids
        chosen = set(random.Random(seed).sample(ids, size))
        return [pk for pk in ids if pk in chosen]  # the pool keeps dataset order
    if mode == "filter":
        return _metadata_filter(dataset, selection.get("filter", ""))
    if mode == "unlabelled":
        return _unlabelled(dataset, version)
    if mode == "disagree":
        return _disagree(dataset, version, selection.get("run"))
    if mode == "items":
        return _listed(dataset, selection.get("ids"))
    raise ValidationError({"selection": f"Unknown item choice {mode!r}."})
