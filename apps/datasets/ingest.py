"""Items from rows: validation per row and batched inserts. Called by apps/intake."""

from __future__ import annotations

import json

from django.db import connection

from apps.datasets.models import Dataset, Item, Kind
from apps.datasets.rows import RowProblem

ITEM_FIELDS = ("id", "prompt", "response", "response_a", "response_b", "reference", "metadata")
RIDER_FIELDS = ("labels", "judgments")
MAX_ID_LENGTH = 200


def infer_kind(row: dict) -> str:
    return Kind.PAIRWISE if ("response_a" in row or "response_b" in row) else Kind.POINTWISE


def _text(row: dict, field: str, line: int, problems: list[RowProblem], *, required: bool) -> str:
    if field not in row or row[field] is None:
        if required:
            problems.append(RowProblem(line, field, "missing"))
        return ""
    value = row[field]
    if not isinstance(value, str):
        problems.append(RowProblem(line, field, "must be text"))
        return ""
    if "\x00" in value:
        problems.append(RowProblem(line, field, "contains a NUL character"))
        return ""
    return value


def clean_item_row(row: dict, *, kind: str, line: int) -> tuple[dict, list[RowProblem]]:
    """Check the item part of one row; return the item fields and the problems found."""
    problems: list[RowProblem] = []
    raw_id = row.get("id")
    if raw_id is None or raw_id == "":
        problems.append(RowProblem(line, "id", "missing"))
        item_id = ""
    elif isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
        problems.append(RowProblem(line, "id", "must be text or a whole number"))
        item_id = ""
    else:
        item_id = str(raw_id).strip()
        if len(item_id) > MAX_ID_LENGTH:
            problems.append(RowProblem(line, "id", f"longer than {MAX_ID_LENGTH} characters"))
    pairwise = kind == Kind.PAIRWISE
    if pairwise and "response" in row and "response_a" not in row:
        problems.append(RowProblem(line, "response", "pointwise row in a pairwise dataset"))
    if not pairwise and ("response_a" in row or "response_b" in row):
        problems.append(RowProblem(line, "response_a", "pairwise row in a pointwise dataset"))
    item = {
        "external_id": item_id,
        "prompt": _text(row, "prompt", line, problems, required=True),
        "reference": _text(row, "reference", line, problems, required=False),
    }
    if pairwise:
        item["response_a"] = _text(row, "response_a", line, problems, required=True)
        item["response_b"] = _text(row, "response_b", line, problems, required=True)
    else:
        item["response"] = _text(row, "response", line, problems, required=True)
    metadata = row.get("metadata")
    if metadata in (None, ""):
        metadata = {}
    if not isinstance(metadata, dict):
        problems.append(RowProblem(line, "metadata", "must be a JSON object"))
        metadata = {}
    # Columns we do not know are kept, not refused: real files carry extra fields.
    extra = {k: v for k, v in row.items() if k not in ITEM_FIELDS and k not in RIDER_FIELDS}
    if extra:
        metadata = {**metadata, **{k: v for k, v in extra.items() if k not in metadata}}
    item["metadata"] = metadata
    return item, problems


def existing_ids(dataset: Dataset, ids: list[str]) -> dict[str, int]:
    """Which of these ids the dataset already holds, with their positions."""
    if dataset.pk is None:
        return {}
    return dict(
        Item.objects.filter(dataset=dataset, external_id__in=ids).values_list(
            "external_id", "position"
        )
    )


_COPY_COLUMNS = ("external_id", "prompt", "response", "response_a", "response_b", "reference")


def items_insert(
    dataset: Dataset, items: list[dict], *, first_position: int, need_ids: bool = True
) -> list[int]:
    """Insert one batch at positions first_position.. and return the new primary keys in order
    (an empty list when need_ids is False and the backend would have to look them up)."""
    if connection.vendor == "postgresql":
        return _items_copy(dataset, items, first_position=first_position, need_ids=need_ids)
    objects = [
        Item(dataset=dataset, position=first_position + i, **fields)
        for i, fields in enumerate(items)
    ]
    # SQLite >= 3.35 returns primary keys from a bulk insert.
    assert connection.features.can_return_rows_from_bulk_insert
    return [item.pk for item in Item.objects.bulk_create(objects, batch_size=1000)]


def _items_copy(
    dataset: Dataset, items: list[dict], *, first_position: int, need_ids: bool
) -> list[int]:
    """PostgreSQL: COPY instead of bulk_create, about twice as fast for 1 KB rows (measured with
    benchmarks/bench_import.py). bulk_create spends most of its time building Item objects and
    quoting every value into INSERT ... UNNEST arrays; COPY streams the row values as they are.

    COPY returns no ids, so they are read back by position: the importer holds the dataset's
    row lock, so positions first_position.. belong to this batch alone.
    """
    table = Item._meta.db_table
    columns = ", ".join(("dataset_id", "position", *_COPY_COLUMNS, "metadata"))
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for i, fields in enumerate(items):
                copy.write_row((
                    dataset.pk, first_position + i, *(fields.get(c, "") for c in _COPY_COLUMNS),
                    json.dumps(fields.get("metadata") or {}),
                ))
        if not need_ids:
            return []
        cursor.execute(
            f"SELECT id FROM {table} WHERE dataset_id = %s AND position >= %s AND position < %s "
            "ORDER BY position",
            [dataset.pk, first_position, first_position + len(items)],
        )
        ids = [row[0] for row in cursor.fetchall()]
    assert len(ids) == len(items), "positions of an import batch must be its own"
    return ids
