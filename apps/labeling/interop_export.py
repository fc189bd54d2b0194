"""A session's labels (or a dataset's) in the formats of other labelling tools, as they
document them, so a team can move work between RubricLab, Label Studio and Argilla:

- **Label Studio** (task format, labelstud.io/guide/task_format): a JSON array of tasks
  `{"id", "data": {id, prompt, response | response_a + response_b, reference}, "annotations":
  [{"completed_by", "result": [...], "was_cancelled": false, "ground_truth": false,
  "created_at", "updated_at"}]}`, one annotation per annotator and round. Each criterion is a
  result whose `from_name` is the criterion key and `to_name` "response": `rating` (`{"rating":
  n}`) for ordinal scales whose levels are 1..N, `choices` (`{"choices": ["value"]}`) for the
  others; the comment is a `textarea` result named "comment". `completed_by` is a stable
  number from the annotator's name, above real user ids (interop_import.labelstudio_user_id).
- **Argilla** (`Dataset.records.to_json`, records as `Record.to_dict` writes them): a JSON array
  of `{"id", "fields": {prompt, response | response_a + response_b, reference}, "metadata",
  "suggestions": {}, "responses": {criterion key: [{"value", "user_id"}], "comment": [...]},
  "vectors": {}}`, `user_id` a UUID made from the annotator's name
  (interop_import.argilla_user_id).

Values are in the item's terms (pairwise "A" is response_a), as in RubricLab's own export.
Read back with `labels_import` and the mapping RubricLab shows beside the download
(docs/labeling.md), the same labels come back. Streamed a chunk of items at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.db.models import QuerySet

from apps.datasets.models import Dataset, Item
from apps.labeling.exports import CHUNK, _item_fields
from apps.labeling.interop_import import argilla_user_id, labelstudio_user_id
from apps.labeling.models import HumanLabel
from apps.rubrics import scales


def _is_rating(scale: dict) -> bool:
    values = [level["value"] for level in scale["levels"]]
    return scale["type"] == scales.ORDINAL and values == list(range(1, len(values) + 1))


def _fields(item: Item, pairwise: bool) -> dict:
    """The item's texts (the row format's fields without metadata)."""
    out = _item_fields(item, pairwise)
    out.pop("metadata")
    return out


def _grouped(labels: QuerySet[HumanLabel], dataset: Dataset):
    """(item, {(annotator, round): [label rows]}) per item with labels, in dataset order."""
    item_ids = list(Item.objects.filter(dataset=dataset, pk__in=labels.values("item_id"))
                    .order_by("position").values_list("id", flat=True))
    for start in range(0, len(item_ids), CHUNK):
        chunk = item_ids[start: start + CHUNK]
        items = Item.objects.in_bulk(chunk)
        by_item: dict[int, dict] = {}
        rows = labels.filter(item_id__in=chunk).order_by("item_id", "annotator", "round", "id")
        for row in rows.values("item_id", "annotator", "round", "criterion_key", "value",
                               "comment", "created_at", "updated_at"):
            by_item.setdefault(row["item_id"], {}).setdefault(
                (row["annotator"], row["round"]), []).append(row)
        for item_id in chunk:
            if item_id in by_item and item_id in items:
                yield items[item_id], by_item[item_id]


def _typed(criterion: dict | None, text: str):
    if criterion is not None and criterion["scale"]["type"] in (scales.BINARY, scales.ORDINAL):
        try:
            return int(text)
        except ValueError:
            return text
    return text


def _json_array(objects: Iterator[dict]) -> Iterator[str]:
    first = True
    yield "["
    for obj in objects:
        yield ("\n" if first else ",\n") + json.dumps(obj, ensure_ascii=False)
        first = False
    yield "\n]\n"


def labelstudio_tasks(labels: QuerySet[HumanLabel], dataset: Dataset,
                      criteria: list[dict]) -> Iterator[str]:
    by_key = {c["key"]: c for c in criteria}
    pairwise = dataset.kind == "pairwise"

    def tasks():
        for item, groups in _grouped(labels, dataset):
            annotations = []
            for (annotator, number), rows in groups.items():
                results = []
                comment = ""
                for row in rows:
                    criterion = by_key.get(row["criterion_key"])
                    comment = comment or row["comment"]
                    if criterion is not None and _is_rating(criterion["scale"]):
                        kind, value = "rating", {"rating": _typed(criterion, row["value"])}
                    else:
                        kind, value = "choices", {"choices": [row["value"]]}
                    results.append({"id": f"{row['criterion_key']}-{number}",
                                    "from_name": row["criterion_key"], "to_name": "response",
                                    "type": kind, "origin": "manual", "value": value})
                if comment:
                    results.append({"id": f"comment-{number}", "from_name": "comment",
                                    "to_name": "response", "type": "textarea",
                                    "origin": "manual", "value": {"text": [comment]}})
                annotations.append({
                    "id": len(annotations) + 1,
                    "completed_by": labelstudio_user_id(annotator), "result": results,
                    "was_cancelled": False, "ground_truth": False,
                    "created_at": min(r["created_at"] for r in rows).isoformat(),
                    "updated_at": max(r["updated_at"] for r in rows).isoformat(),
                })
            yield {"id": item.position + 1, "data": _fields(item, pairwise),
                   "annotations": annotations, "predictions": []}

    return _json_array(tasks())


def argilla_records(labels: QuerySet[HumanLabel], dataset: Dataset,
                    criteria: list[dict]) -> Iterator[str]:
    """Argilla records. A record holds one response per user and question, so an annotator's
    repeated rounds of an item are written as their latest (what calibration uses)."""
    by_key = {c["key"]: c for c in criteria}
    pairwise = dataset.kind == "pairwise"

    def records():
        for item, groups in _grouped(labels, dataset):
            latest: dict[str, list] = {}
            for (annotator, _number), rows in sorted(groups.items()):
                latest[annotator] = rows
            responses: dict[str, list] = {}
            for annotator, rows in latest.items():
                user = argilla_user_id(annotator)
                comment = ""
                for row in rows:
                    comment = comment or row["comment"]
                    responses.setdefault(row["criterion_key"], []).append({
                        "value": _typed(by_key.get(row["criterion_key"]), row["value"]),
                        "user_id": user})
                if comment:
                    responses.setdefault("comment", []).append({"value": comment,
                                                                "user_id": user})
            yield {"id": item.external_id, "fields": _fields(item, pairwise),
                   "metadata": item.metadata or {}, "suggestions": {}, "responses": responses,
                   "vectors": {}, "_server_id": None}

    return _json_array(records())


def mapping_for(fmt: str, criteria: list[dict]) -> str:
    """The mapping file that reads this export back (labels_import --mapping)."""
    lines = [f"format: {fmt}", "item_id: id", "comment: comment", "criteria:"]
    for c in criteria:
        lines.append(f"  {c['key']}: {{from: {c['key']}}}")
    return "\n".join(lines) + "\n"
