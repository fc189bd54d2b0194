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
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class JudgeRun(models.Model):
    """One judge over one dataset under one rubric version."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judge_runs")
    rubric_version = models.ForeignKey(
        RubricVersion, on_delete=models.PROTECT, related_name="judge_runs"
    )
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="judge_runs")
    name = models.CharField(max_length=120, help_text="The judge's name (model or import name).")
    kind = models.CharField(max_length=16, choices=RunKind.choices)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    samples = models.PositiveIntegerField(default=1)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} #{self.pk}"


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
