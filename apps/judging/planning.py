"""Starting, cancelling, resuming and retrying judge runs (the services behind every button,
command and API call). A run's planned work is written as rows before anything is sent.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.datasets.models import Dataset, Item
from apps.judging import delivery, egress, provider, spend
from apps.judging.aggregate import drop_verdicts_for_items
from apps.judging.models import (
    ACTIVE_STATUSES,
    BatchStatus,
    JudgeBatch,
    JudgeConfig,
    JudgeRun,
    Judgment,
    JudgmentStatus,
    RunKind,
    RunStatus,
)
from apps.projects.models import Project
from apps.rubrics import prompting
from apps.rubrics.models import RubricVersion
from apps.rubrics.selectors import judge_spec, version_content

TYPICAL_COMPLETION_TOKENS = 80
_URL_RE = re.compile(r"^https?://[^\s/?#]+(/\S*)?$")


@dataclass(frozen=True)
class RunSettings:
    model: str
    api_base: str = ""
    temperature: float = 0.0
    max_tokens: int = 400
    samples: int = 1
    concurrency: int = 16
    timeout_s: float = 60.0
    use_cache: bool = True


@dataclass(frozen=True)
class Subset:
    """Which items: "all", "labelled" (have a human label on a criterion of the version),
    "sample" (a random sample of `size` with `seed`), or "items" (these ids of the dataset)."""

    kind: str = "all"
    size: int | None = None
    seed: int = 0
    item_ids: tuple[int, ...] = ()


@dataclass
class Estimate:
    items: int
    criteria: int
    samples: int
    orders: int
    calls: int
    prompt_tokens_per_call: int
    completion_tokens_per_call: int
    cost_usd: float | None  # None: litellm has no price for the model

    def describe(self) -> str:
        text = (f"{self.items:,} items x {self.criteria} criteria x {self.samples} samples"
                f"{' x 2 orders' if self.orders == 2 else ''} = {self.calls:,} calls, about "
                f"{self.prompt_tokens_per_call:,} + {self.completion_tokens_per_call} tokens each")
        cost = "unknown (no price for this model)" if self.cost_usd is None else (
            f"about ${self.cost_usd:,.2f}")
        return f"{text}; cost {cost}"


def settings_errors(run_settings: RunSettings) -> dict[str, str]:
    """Problems with a run's settings, by field: ranges, and a key the model needs (by name)."""
    errors = {}
    if not run_settings.model.strip():
        errors["model"] = "Name a litellm model, e.g. openai/gpt-4.1-mini."
    if not 1 <= run_settings.samples <= 20:
        errors["samples"] = "From 1 to 20 samples per item."
    if not 1 <= run_settings.concurrency <= 1000:
        errors["concurrency"] = "From 1 to 1,000 calls in flight."
    if not 0 <= run_settings.temperature <= 2:
        errors["temperature"] = "From 0 to 2."
    if not 1 <= run_settings.max_tokens <= 32_000:
        errors["max_tokens"] = "From 1 to 32,000."
    if not 1 <= run_settings.timeout_s <= 3600:
        errors["timeout_s"] = "From 1 to 3,600 seconds."
    if run_settings.api_base and not _URL_RE.match(run_settings.api_base):
        # Said now, not as a run of connection errors on the workers.
        errors["api_base"] = "An http:// or https:// URL, e.g. http://gpu-box:8000/v1."
    elif run_settings.api_base:
        refused = egress.api_base_error(run_settings.api_base.strip())
        if refused:
            errors["api_base"] = refused
    if run_settings.model.strip() and not run_settings.api_base:
        missing = provider.missing_keys(run_settings.model)
        if missing:
            errors["model"] = (
                f"{run_settings.model} needs {', '.join(missing)} in the environment of the "
                "workers (keys are never stored in RubricLab)."
            )
    return errors


def select_items(dataset: Dataset, version: RubricVersion, subset: Subset):
    items = Item.objects.filter(dataset=dataset).order_by("position")
    if subset.kind == "labelled":
        from apps.labeling.models import HumanLabel

        criteria = version.criteria.all()
        condition = Q()
        for c in criteria:
            condition |= Q(criterion_key=c.key, scale_signature=c.scale_signature)
        labelled = HumanLabel.objects.filter(item__dataset=dataset).filter(condition)
        items = items.filter(pk__in=labelled.values("item_id"))
    if subset.kind == "items":
        items = items.filter(pk__in=list(subset.item_ids))
    ids = list(items.values_list("pk", flat=True))
    if subset.kind == "sample":
        if not subset.size or subset.size < 1:
            raise ValidationError({"subset": "Give the sample size."})
        rng = random.Random(subset.seed)
        ids = sorted(rng.sample(ids, min(subset.size, len(ids))))
    return ids


def estimate(*, version: RubricVersion, dataset: Dataset, item_ids: list[int],
             run_settings: RunSettings) -> Estimate:
    spec = judge_spec(version)
    criteria = spec["criteria"]
    orders = 2 if dataset.is_pairwise else 1
    calls = len(item_ids) * len(criteria) * run_settings.samples * orders
    # Typical prompt size from up to 20 real items, at ~4 characters per token.
    sample_items = Item.objects.filter(pk__in=item_ids[:20])
    sizes = [
        sum(len(m["content"]) for m in prompting.build_messages(spec, c, item.fields()))
        for item in sample_items for c in criteria[:3]
    ]
    prompt_tokens = math.ceil((sum(sizes) / len(sizes)) / 4) if sizes else 0
    price = provider.price_per_token(run_settings.model)
    cost = None
    if price is not None:
        completion = min(TYPICAL_COMPLETION_TOKENS, run_settings.max_tokens)
        cost = calls * (prompt_tokens * price[0] + completion * price[1])
    return Estimate(items=len(item_ids), criteria=len(criteria), samples=run_settings.samples,
                    orders=orders, calls=calls, prompt_tokens_per_call=prompt_tokens,
                    completion_tokens_per_call=TYPICAL_COMPLETION_TOKENS, cost_usd=cost)


def _check_cap(project: Project, calls: int, *, what: str, advice: str,
               field: str | None = None, estimate_usd: float | None = 0.0,
               api_base: str = "") -> None:
    """Refuse to queue `calls` more model calls when the project's cap would be exceeded.

    Call inside a transaction: the project's row is locked, so two starts (or a start and a
    resume) at the same moment take turns instead of both fitting under the cap. NO KEY: rows
    that merely refer to the project (a dataset being uploaded) need not wait for the lock.
    """
    locked = Project.objects.select_for_update(no_key=True).get(pk=project.pk)
    cap = locked.queued_calls_cap()  # never above the operator's MAX_QUEUED_CALLS_LIMIT
    queued = delivery.queued_calls(project)
    if queued + calls > cap:
        message = (f"{what}; with {queued:,} already queued that exceeds the project's cap "
                   f"of {cap:,}. {advice}")
        raise ValidationError({field: message} if field else message)
    over = spend.monthly_cost_error(locked, estimate_usd=estimate_usd, api_base=api_base)
    if over:
        raise ValidationError({field: over} if field else over)


def _items_per_batch(calls_per_item: int, concurrency: int, planned_calls: int) -> int:
    """About JUDGE_BATCH_SPLIT batches a run, so that every listening worker finds one: a
    session keeps its pipeline full by taking the next batch while its calls are in flight, so
    small batches cost no drain (docs/decisions/0010)."""
    share = math.ceil(planned_calls / settings.JUDGE_BATCH_SPLIT)
    calls = min(max(settings.JUDGE_BATCH_MIN_CALLS, share),
                max(settings.JUDGE_BATCH_MIN_CALLS, concurrency * settings.JUDGE_BATCH_WAVES))
    return max(1, calls // max(1, calls_per_item))


def judge_run_start(
    *,
    project: Project,
    version: RubricVersion,
    dataset: Dataset,
    run_settings: RunSettings,
    subset: Subset = Subset(),
    name: str = "",
    user=None,
    allow_draft: bool = False,
) -> JudgeRun:
    """Plan the run as rows (batches and one Judgment per call) and send the first batches.

    `allow_draft`: the workbench re-scores a draft; it records the text it judged itself
    (apps/calibration/workbench.py), since a draft can change after the run."""
    errors = settings_errors(run_settings)
    if not version.is_published and not allow_draft:
        errors["version"] = "Publish the rubric version first: runs refer to a frozen version."
    if version.rubric.project_id != project.pk or dataset.project_id != project.pk:
        errors["dataset"] = "The rubric and the dataset must belong to this project."
    elif version.rubric.mode != dataset.kind:
        errors["dataset"] = f"A {version.rubric.mode} rubric needs a {version.rubric.mode} dataset."
    if not dataset.texts_available:
        errors["dataset"] = "This dataset carries ratings only; there is no text to judge."
    if errors:
        raise ValidationError(errors)
    item_ids = select_items(dataset, version, subset)
    if not item_ids:
        raise ValidationError({"subset": "No item matches: nothing to judge."})
    plan = estimate(version=version, dataset=dataset, item_ids=item_ids,
                    run_settings=run_settings)
    criteria = [c["key"] for c in version_content(version)["criteria"]]
    orders = ("AB", "BA") if dataset.is_pairwise else ("",)
    per_item = len(criteria) * run_settings.samples * len(orders)
    per_batch = _items_per_batch(per_item, run_settings.concurrency, plan.calls)
    with transaction.atomic():
        _check_cap(project, plan.calls, field="subset",
                   what=f"This run would queue {plan.calls:,} model calls ({plan.describe()})",
                   advice="Judge a sample, or ask an owner to raise the cap.",
                   estimate_usd=plan.cost_usd, api_base=run_settings.api_base.strip())
        judge_name = name.strip() or run_settings.model.strip()
        # The judge (name, model, sampling) is kept as a JudgeConfig, so the next run of the
        # same judge can start from it; the run still copies every setting it used.
        config, _ = JudgeConfig.objects.update_or_create(
            project=project, rubric_version=version, name=judge_name,
            defaults={"model": run_settings.model.strip(),
                      "api_base": run_settings.api_base.strip(),
                      "temperature": run_settings.temperature,
                      "max_tokens": run_settings.max_tokens, "samples": run_settings.samples,
                      "concurrency": run_settings.concurrency,
                      "timeout_s": run_settings.timeout_s, "created_by": user},
        )
        run = JudgeRun.objects.create(
            project=project, rubric_version=version, dataset=dataset, config=config,
            name=judge_name, kind=RunKind.LIVE, status=RunStatus.QUEUED,
            samples=run_settings.samples, model=run_settings.model.strip(),
            api_base=run_settings.api_base.strip(), temperature=run_settings.temperature,
            max_tokens=run_settings.max_tokens, concurrency=run_settings.concurrency,
            timeout_s=run_settings.timeout_s, use_cache=run_settings.use_cache,
            use_schema=provider.supports_schema(run_settings.model),
            planned_calls=plan.calls, item_count=len(item_ids), created_by=user,
        )
        n_batches = math.ceil(len(item_ids) / per_batch)
        JudgeBatch.objects.bulk_create(
            JudgeBatch(run=run, number=b) for b in range(n_batches)
        )
        rows = []
        for index, item_id in enumerate(item_ids):
            batch = index // per_batch
            for key in criteria:
                for sample in range(run_settings.samples):
                    for order in orders:
                        rows.append(Judgment(run=run, item_id=item_id, criterion_key=key,
                                             sample=sample, order=order, batch=batch))
            if len(rows) >= 5000:
                Judgment.objects.bulk_create(rows)
                rows = []
        Judgment.objects.bulk_create(rows)
        dispatch_window(run)
    return run


def dispatch_window(run: JudgeRun, *, resend: list[int] | None = None) -> list[int]:
    """Send batches until JUDGE_DISPATCH_WINDOW of them are on the broker or being worked on.

    Messages go out when the surrounding transaction commits (delay_on_commit), so a worker
    never receives a batch whose rows it cannot see yet.
    """
    from apps.judging.tasks import run_judge_batch

    # Batches sent again spend their delivery budget and count against the cap (delivery.py).
    numbers, _ = delivery.redeliveries(run, list(resend or []))
    in_flight = JudgeBatch.objects.filter(
        run=run, status__in=(BatchStatus.DISPATCHED, BatchStatus.RUNNING)
    ).exclude(number__in=numbers).count()
    room = settings.JUDGE_DISPATCH_WINDOW - in_flight - len(numbers)
    if room > 0 and JudgeRun.objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES).exists():
        waiting = list(
            JudgeBatch.objects.filter(run=run, status=BatchStatus.PENDING)
            .exclude(number__in=numbers).order_by("number")
            .values_list("number", "pending_at_dispatch")[:room]
        )
        # A pending batch that was sent before (it stopped with calls left: a time limit) is
        # a re-delivery too, with its budget; the others go out for the first time.
        first = [number for number, sent in waiting if sent is None]
        again, _ = delivery.redeliveries(run, [number for number, sent in waiting
                                               if sent is not None])
        delivery.record_dispatch(run, first, delivery.pending_by_batch(run, first))
        numbers += first + again
    if not numbers:
        return []
    JudgeBatch.objects.filter(run=run, number__in=numbers).update(
        status=BatchStatus.DISPATCHED, dispatched_at=timezone.now(),
        dispatches=F("dispatches") + 1, lease="",
    )
    for number in numbers:
        run_judge_batch.delay_on_commit(run.pk, number)
    return numbers


@transaction.atomic
def judge_run_cancel(*, run: JudgeRun) -> bool:
    """Stop dispatching; workers stop starting calls at their next check (within a second)."""
    changed = JudgeRun.objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES).update(
        status=RunStatus.CANCELLED, finished_at=timezone.now()
    )
    JudgeBatch.objects.filter(run=run, status=BatchStatus.DISPATCHED).update(
        status=BatchStatus.PENDING
    )
    run.refresh_from_db()
    return bool(changed)


def _lock_stopped(run: JudgeRun) -> None:
    """Lock the run's row and refuse a run that is still going.

    Resuming an active run would put the batches its workers hold back to pending and send them
    again: a second task would take each one over while the first still calls the model (a
    double click on Resume does exactly that). The lock makes two requests take turns.
    """
    if run.kind != RunKind.LIVE:
        raise ValidationError("Imported verdicts cannot be run.")
    status = JudgeRun.objects.select_for_update(no_key=True).filter(pk=run.pk).values_list(
        "status", flat=True).first()
    if status in ACTIVE_STATUSES:
        raise ValidationError("The run is still going: cancel it, or wait until it ends.")


@transaction.atomic
def judge_run_resume(*, run: JudgeRun) -> int:
    """Run what is missing: pending judgments of a cancelled or stopped run."""
    _lock_stopped(run)
    pending_batches = set(
        Judgment.objects.filter(run=run, status=JudgmentStatus.PENDING)
        .values_list("batch", flat=True).distinct()
    )
    if not pending_batches:
        return 0
    # A stopped run's calls are not counted as queued; resuming queues them again.
    pending = Judgment.objects.filter(run=run, status=JudgmentStatus.PENDING).count()
    _check_cap(run.project, pending, what=f"Resuming would queue {pending:,} model calls",
               advice="Wait for other runs to finish, or ask an owner to raise the cap.")
    JudgeRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, finished_at=None, error_message="", requeued_calls=0
    )
    # A resume is the user's choice: the batches' delivery budgets start afresh.
    JudgeBatch.objects.filter(run=run, number__in=pending_batches).update(
        status=BatchStatus.PENDING, lease="", stalled_deliveries=0, pending_at_dispatch=None
    )
    run.refresh_from_db()
    dispatch_window(run)
    return len(pending_batches)


@transaction.atomic
def judge_run_retry_failed(*, run: JudgeRun) -> int:
    """Put failed and invalid judgments back to pending and run them again."""
    _lock_stopped(run)
    redo = Judgment.objects.filter(
        run=run, status__in=(JudgmentStatus.FAILED, JudgmentStatus.INVALID)
    )
    item_ids = set(redo.values_list("item_id", flat=True))
    count = redo.update(status=JudgmentStatus.PENDING, value="", error_kind="",
                        error_message="", attempts=0, finished_at=None)
    if count:
        drop_verdicts_for_items(run, item_ids)
        judge_run_resume(run=run)
    return count
