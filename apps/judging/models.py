from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.datasets.models import Dataset, Item
from apps.projects.models import Project
from apps.rubrics.models import RubricVersion


class RunKind(models.TextChoices):
    LIVE = "live", "Run here"
    IMPORTED = "imported", "Imported verdicts"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    # Some calls failed or gave invalid answers, no more than JUDGE_RUN_MAX_FAILED_SHARE.
    COMPLETED_WITH_FAILURES = "completed_with_failures", "Completed with failures"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
# Runs whose verdicts are evidence (calibration, exports): ended, and judged enough.
FINISHED_STATUSES = (RunStatus.COMPLETED, RunStatus.COMPLETED_WITH_FAILURES)


class JudgeConfig(models.Model):
    """A named judge: a model with its sampling settings, for one rubric version."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judge_configs")
    # RESTRICT, not PROTECT: a version with judges cannot be deleted on its own, but deleting
    # the whole project (which deletes the judges too) is allowed.
    rubric_version = models.ForeignKey(
        RubricVersion, on_delete=models.RESTRICT, related_name="judge_configs"
    )
    name = models.CharField(max_length=120)
    model = models.CharField(max_length=200, help_text="A litellm model string.")
    api_base = models.CharField(max_length=500, blank=True)
    temperature = models.FloatField(default=0.0)
    max_tokens = models.PositiveIntegerField(default=400)
    samples = models.PositiveIntegerField(default=1)
    concurrency = models.PositiveIntegerField(default=16)
    timeout_s = models.FloatField(default=60.0)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class JudgeRun(models.Model):
    """One judge over one dataset under one rubric version.

    A live run copies its judge's settings, so it stays a faithful record if the config changes.
    Its planned work is Judgment rows; the database, not the broker, is the truth about progress.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judge_runs")
    rubric_version = models.ForeignKey(
        RubricVersion, on_delete=models.RESTRICT, related_name="judge_runs"
    )
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="judge_runs")
    config = models.ForeignKey(
        JudgeConfig, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    name = models.CharField(max_length=120, help_text="The judge's name (model or import name).")
    kind = models.CharField(max_length=16, choices=RunKind.choices)
    status = models.CharField(max_length=32, choices=RunStatus.choices, default=RunStatus.QUEUED)
    samples = models.PositiveIntegerField(default=1)
    model = models.CharField(max_length=200, blank=True)
    api_base = models.CharField(max_length=500, blank=True)
    temperature = models.FloatField(default=0.0)
    max_tokens = models.PositiveIntegerField(default=400)
    concurrency = models.PositiveIntegerField(default=16)
    timeout_s = models.FloatField(default=60.0)
    use_cache = models.BooleanField(default=True)
    use_schema = models.BooleanField(default=False)
    planned_calls = models.PositiveIntegerField(default=0)
    # Calls queued again by re-sending a batch that had not finished them: they count against
    # the project's queued-calls cap like new ones, so the cap bounds spend when a batch loops.
    requeued_calls = models.PositiveIntegerField(default=0)
    item_count = models.PositiveIntegerField(default=0)
    # The provider's message for an error that stops the run (bad key, unknown model): once.
    error_message = models.TextField(blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_pairwise(self) -> bool:
        return self.dataset.kind == "pairwise"


class BatchStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DISPATCHED = "dispatched", "Dispatched"
    RUNNING = "running", "Running"
    DONE = "done", "Done"


class JudgeBatch(models.Model):
    """A slice of a run's items, handed to a Celery task by id.

    `heartbeat_at` is refreshed while a task works on the batch; the coordinator re-sends a
    batch whose heartbeat went stale (its worker died) and that still has pending work.
    """

    run = models.ForeignKey(JudgeRun, on_delete=models.CASCADE, related_name="batches")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=BatchStatus.choices,
                              default=BatchStatus.PENDING)
    dispatches = models.PositiveIntegerField(default=0)
    # The delivery budget (JUDGE_BATCH_MAX_DELIVERIES): pending calls when last sent, and how
    # many deliveries in a row ended without writing any of them.
    pending_at_dispatch = models.PositiveIntegerField(null=True, blank=True)
    stalled_deliveries = models.PositiveIntegerField(default=0)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    lease = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="judge_batch_unique"),
        ]
        indexes = [models.Index(fields=["run", "status"], name="judge_batch_status_idx")]

    def __str__(self) -> str:
        return f"run {self.run_id} batch {self.number}"


class JudgmentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    INVALID = "invalid", "Invalid output"  # answered, but did not parse or was out of scale
    FAILED = "failed", "Failed"  # no answer after the retries (429 storm, 5xx, timeouts)


class Judgment(models.Model):
    """One model call's result: (run, item, criterion, sample, order) is written once.

    `order` is "" for pointwise runs and "AB" / "BA" for the two orders of a pairwise question;
    `value` is always in A's terms of the item (a BA answer is mapped back).
    """

    run = models.ForeignKey(JudgeRun, on_delete=models.CASCADE, related_name="judgments")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="judgments")
    criterion_key = models.CharField(max_length=60)
    sample = models.PositiveSmallIntegerField(default=0)
    order = models.CharField(max_length=2, blank=True)
    batch = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=JudgmentStatus.choices,
                              default=JudgmentStatus.PENDING)
    value = models.CharField(max_length=64, blank=True)
    rationale = models.TextField(blank=True)
    raw_output = models.TextField(blank=True)
    error_kind = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    cached = models.BooleanField(default=False)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost_usd = models.FloatField(null=True, blank=True)  # None: litellm has no price (unknown)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Every request sent to the provider for this key, over every delivery, resume and "retry
    # failed" (attempts is only the last delivery's), and what every answer cost: the run's
    # asked / retried counts and its paid cost (docs/decisions/0010).
    requests = models.PositiveIntegerField(default=0)
    paid_cost_usd = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "item", "criterion_key", "sample", "order"],
                name="judgment_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["run", "batch", "status"], name="judgment_batch_idx"),
            models.Index(fields=["run", "status"], name="judgment_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.criterion_key}[{self.sample}{self.order}]={self.value or self.status}"


class Verdict(models.Model):
    """The judge's combined verdict for one (item, criterion) of a run.

    For K samples it is the majority (categories) or the mean rounded to a level (ordinal), with
    the mean and spread kept; for pairwise, the answer consistent across both orders.
    """

    run = models.ForeignKey(JudgeRun, on_delete=models.CASCADE, related_name="verdicts")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="verdicts")
    criterion_key = models.CharField(max_length=60)
    value = models.CharField(max_length=64)
    mean = models.FloatField(null=True, blank=True)
    spread = models.FloatField(null=True, blank=True)
    n_samples = models.PositiveIntegerField(default=1)
    rationale = models.TextField(blank=True)
    # Why a verdict needs a second look: "inconsistent" (pairwise orders disagree),
    # "unparseable" (an imported judge's answer that could not be read, counted as tie).
    flag = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "item", "criterion_key"], name="verdict_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.criterion_key}={self.value}"


class JudgeSession(models.Model):
    """One worker's session on a run: how many of the run's `concurrency` slots it holds.

    The run-wide cap is the sum of `held` over live sessions (beat within JUDGE_SLOT_LEASE_S);
    a dead worker's slots come back when its lease expires (docs/decisions/0010).
    """

    run = models.ForeignKey(JudgeRun, on_delete=models.CASCADE, related_name="sessions")
    lease = models.CharField(max_length=64)
    held = models.PositiveIntegerField(default=0)
    demand = models.PositiveIntegerField(default=0)
    beat_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "lease"], name="judge_session_unique"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} session {self.lease[:8]}: {self.held}"


class RateWindow(models.Model):
    """Requests started per model and minute, shared by every worker (JUDGE_MODEL_RPM)."""

    model = models.CharField(max_length=200)
    minute = models.DateTimeField()
    used = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model", "minute"], name="rate_window_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.minute:%H:%M}: {self.used}"


class Heartbeat(models.Model):
    """When a periodic job (the run coordinator) last ran; the run page warns when it is old."""

    name = models.CharField(max_length=60, unique=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at}"


class CallCache(models.Model):
    """Answers already paid for, keyed by a hash of (messages, model, sampling, sample index).

    Only answers that parsed are kept, so retrying an invalid answer asks the model again.
    """

    key = models.CharField(max_length=64, unique=True)
    model = models.CharField(max_length=200)
    content = models.TextField()
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost_usd = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key[:12]
