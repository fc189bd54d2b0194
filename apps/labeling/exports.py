"""Labels out: a session's or a dataset's human labels as JSONL or CSV rows in the dataset row
format of DESIGN.md, so that `dataset_import` reads them back as labels.

Each row is one item with its labels:
    {"id", "prompt", "response" | "response_a" + "response_b", "reference", "metadata",
     "labels": [{"annotator", "criterion", "value", "comment", "time", "shown_order", "round"}]}
`value` is in the item's terms (pairwise "A" means response_a); `shown_order` says what the
annotator saw on the left ("AB": response_a, "BA": response_b, "" when not labelled on screen);
`round` numbers an annotator's repeated labels of the item (1 the first time).
Rows are streamed in chunks of items, so memory does not grow with the dataset.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from django.db.models import Exists, OuterRef, QuerySet

from apps.datasets.models import Dataset, Item
from apps.datasets.rows import csv_cell_out
from apps.labeling.models import HumanLabel, LabelingSession

CHUNK = 500


def session_labels(session: LabelingSession, *, user=None) -> QuerySet[HumanLabel]:
    """A session's labels; with `user`, only theirs (what a labeller may export)."""
    labels = HumanLabel.objects.filter(session=session)
    return labels.filter(user=user) if user is not None else labels


def dataset_labels(dataset: Dataset) -> QuerySet[HumanLabel]:
    return HumanLabel.objects.filter(item__dataset=dataset)


def typed_value(signature: str, text: str):
    """The label's value as the row format writes it: a number for binary and ordinal scales
    (the scale type leads the signature), text otherwise."""
    if signature.split(":", 1)[0] in ("binary", "ordinal"):
        try:
            return int(text)
        except ValueError:
            return text
    return text


def _item_fields(item: Item, pairwise: bool) -> dict:
    row = {"id": item.external_id, "prompt": item.prompt}
    if pairwise:
        row["response_a"], row["response_b"] = item.response_a, item.response_b
    else:
        row["response"] = item.response
    row["reference"] = item.reference
    row["metadata"] = item.metadata or {}
    return row


def export_rows(labels: QuerySet[HumanLabel], dataset: Dataset) -> Iterator[dict]:
    """One row per item that has labels in `labels`, in dataset order."""
    pairwise = dataset.kind == "pairwise"
    item_ids = list(
        Item.objects.filter(dataset=dataset)
        .filter(Exists(labels.filter(item=OuterRef("pk"))))
        .order_by("position").values_list("id", flat=True)
    )
    for start in range(0, len(item_ids), CHUNK):
        chunk = item_ids[start: start + CHUNK]
        items = Item.objects.in_bulk(chunk)
        grouped: dict[int, list[dict]] = {}
        rows = labels.filter(item_id__in=chunk).order_by("item_id", "criterion_key",
                                                         "annotator", "round", "id")
        for item_id, annotator, key, signature, value, comment, created, order, number in (
                rows.values_list("item_id", "annotator", "criterion_key", "scale_signature",
                                 "value", "comment", "created_at", "shown_order", "round")):
            grouped.setdefault(item_id, []).append({
                "annotator": annotator, "criterion": key,
                "value": typed_value(signature, value), "comment": comment,
                "time": created.isoformat(), "shown_order": order, "round": number,
            })
        for item_id in chunk:
            if item_id in grouped and item_id in items:
                yield {**_item_fields(items[item_id], pairwise), "labels": grouped[item_id]}


def jsonl_lines(rows: Iterator[dict]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"


def csv_lines(rows: Iterator[dict], *, pairwise: bool) -> Iterator[str]:
    """CSV with the same columns; `metadata` and `labels` hold JSON, as the importer reads.
    Text cells that a spreadsheet would run as a formula are neutralised (csv_cell_out)."""
    columns = ["id", "prompt", *(["response_a", "response_b"] if pairwise else ["response"]),
               "reference", "metadata", "labels"]
    buffer = io.StringIO()
    # Every cell quoted: Python 3.11 leaves a bare "\r" unquoted with a "\n" line end, and a
    # reader then splits the row there.
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n",
                            quoting=csv.QUOTE_ALL)
    writer.writeheader()
    for row in rows:
        row = {**{k: csv_cell_out(v) if isinstance(v, str) else v for k, v in row.items()},
               "metadata": json.dumps(row["metadata"], ensure_ascii=False),
               "labels": json.dumps(row["labels"], ensure_ascii=False)}
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()
