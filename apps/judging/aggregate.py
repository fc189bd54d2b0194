"""Combined verdicts from a run's judgments (K samples, and both orders for pairwise)."""

from __future__ import annotations

from collections import defaultdict

from apps.judging.models import JudgeRun, Judgment, JudgmentStatus, Verdict
from apps.judging.scoring import criterion_verdict, pairwise_sample
from apps.rubrics import scales
from apps.rubrics.selectors import version_content


def _criteria(run: JudgeRun) -> dict[str, dict]:
    return {c["key"]: c for c in version_content(run.rubric_version)["criteria"]}


def build_verdicts(run: JudgeRun, *, batch: int | None = None) -> int:
    """Write the Verdict of every (item, criterion) whose judgments are all final.

    Idempotent: existing verdicts are kept (unique key, conflicts ignored), so a batch that is
    processed twice, or the coordinator finishing a run, never writes a verdict twice.
    """
    criteria = _criteria(run)
    judgments = Judgment.objects.filter(run=run)
    if batch is not None:
        judgments = judgments.filter(batch=batch)
    open_keys = set(
        judgments.filter(status=JudgmentStatus.PENDING).values_list("item_id", "criterion_key")
    )
    done = (
        judgments.filter(status=JudgmentStatus.DONE)
        .values_list("item_id", "criterion_key", "sample", "order", "value", "rationale")
        .order_by("item_id", "criterion_key", "sample", "order")
    )
    grouped: dict[tuple[int, str], list[tuple]] = defaultdict(list)
    for item_id, key, sample, order, value, rationale in done:
        if (item_id, key) not in open_keys:
            grouped[(item_id, key)].append((sample, order, value, rationale))
    verdicts = []
    for (item_id, key), rows in grouped.items():
        criterion = criteria.get(key)
        if criterion is None:
            continue
        scale = criterion["scale"]
        rationale = rows[0][3]
        if scale["type"] == scales.PAIRWISE:
            by_sample: dict[int, dict[str, str]] = defaultdict(dict)
            for sample, order, value, _ in rows:
                by_sample[sample][order] = value
            values = [pairwise_sample(orders.get("AB"), orders.get("BA"))
                      for orders in by_sample.values()]
        else:
            values = [scales.coerce_value(scale, value) for _, _, value, _ in rows]
        # Only answered samples are here (failed and invalid calls are not DONE): the verdict
        # combines the valid ones, as reward.py does (apps/judging/scoring.py).
        verdict = criterion_verdict(scale, values)
        if verdict is None:
            continue
        value, mean, spread, flag, n_valid = verdict
        verdicts.append(Verdict(
            run=run, item_id=item_id, criterion_key=key, value=scales.value_to_text(value),
            mean=mean, spread=spread, n_samples=n_valid, rationale=rationale, flag=flag,
        ))
    Verdict.objects.bulk_create(verdicts, batch_size=1000, ignore_conflicts=True)
    return len(verdicts)


def drop_verdicts_for_items(run: JudgeRun, item_ids: set[int]) -> None:
    """Forget the verdicts of items whose judgments are being redone; build_verdicts rebuilds
    them (for every criterion of those items) once the new judgments are final."""
    ids = list(item_ids)
    for start in range(0, len(ids), 1000):
        Verdict.objects.filter(run=run, item_id__in=ids[start : start + 1000]).delete()
