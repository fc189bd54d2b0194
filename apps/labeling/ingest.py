"""Human labels that ride along with dataset rows. Called by apps/intake."""

from __future__ import annotations

from apps.datasets.rows import RowProblem
from apps.labeling.models import HumanLabel, LabelSource
from apps.rubrics import scales

MAX_ROUND = 1000  # rounds are repeats by one person: a few, never thousands


def clean_labels(raw, *, criteria: dict[str, dict], line: int) -> tuple[list[dict], list]:
    """Check a row's `labels` list against the rubric's criteria (key -> criterion content)."""
    problems: list[RowProblem] = []
    if raw in (None, ""):
        return [], problems
    if not isinstance(raw, list):
        return [], [RowProblem(line, "labels", "must be a list of {annotator, criterion, value}")]
    labels: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for i, label in enumerate(raw):
        field = f"labels[{i}]"
        if not isinstance(label, dict):
            problems.append(RowProblem(line, field, "must be an object"))
            continue
        annotator = label.get("annotator")
        if not isinstance(annotator, str | int) or isinstance(annotator, bool) or not str(
            annotator
        ).strip():
            problems.append(RowProblem(line, f"{field}.annotator", "missing"))
            continue
        annotator = str(annotator).strip()[:150]
        key = label.get("criterion")
        criterion = criteria.get(key) if isinstance(key, str) else None
        if criterion is None:
            known = ", ".join(criteria) or "(none)"
            problems.append(
                RowProblem(line, f"{field}.criterion", f"unknown criterion {key!r}; known: {known}")
            )
            continue
        if "value" not in label:
            problems.append(RowProblem(line, f"{field}.value", "missing"))
            continue
        try:
            value = scales.coerce_value(criterion["scale"], label["value"])
        except ValueError as exc:
            problems.append(RowProblem(line, f"{field}.value", str(exc)))
            continue
        number = label.get("round", 1)
        if (not isinstance(number, int) or isinstance(number, bool)
                or not 1 <= number <= MAX_ROUND):
            problems.append(RowProblem(line, f"{field}.round",
                                       f"a whole number from 1 to {MAX_ROUND} (the annotator's "
                                       "first, second, ... label of the item)"))
            continue
        if (annotator, key, number) in seen:
            more = "" if "round" in label else " (a repeat needs its own \"round\": 2, 3, ...)"
            problems.append(
                RowProblem(line, field,
                           f"a second label by {annotator!r} for {key!r} in round {number}{more}")
            )
            continue
        seen.add((annotator, key, number))
        comment = label.get("comment") or ""
        labels.append(
            {
                "annotator": annotator,
                "criterion_key": key,
                "scale_signature": scales.scale_signature(criterion["scale"]),
                "value": scales.value_to_text(value),
                "comment": comment if isinstance(comment, str) else str(comment),
                "round": number,
            }
        )
    return labels, problems


def labels_insert(pairs: list[tuple[int, list[dict]]]) -> int:
    """Insert the labels of a batch: pairs of (item id, cleaned labels)."""
    objects = [
        HumanLabel(item_id=item_id, source=LabelSource.IMPORT, **label)
        for item_id, labels in pairs
        for label in labels
    ]
    HumanLabel.objects.bulk_create(objects, batch_size=2000)
    return len(objects)
