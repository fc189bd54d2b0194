from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.judging.models import JudgeRun
from apps.projects.models import Project
from apps.rubrics.models import RubricVersion


class ExportFormat(models.TextChoices):
    BUNDLE = "bundle", "Reward bundle (zip): TRL, verl, OpenRLHF, HTTP"
    TRL = "trl", "Bundle with a TRL example"
    VERL = "verl", "Bundle with a verl example"
    OPENRLHF = "openrlhf", "Bundle with an OpenRLHF example"
    OPENAI = "openai", "OpenAI-style grader JSON"
    JSON = "json", "judge.json and calibration.json"


class Export(models.Model):
    """One delivered export: what, which judge, which rubric version, its evidence, who, when.

    The artifact is kept, so a pipeline can download exactly what was exported again.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    run = models.ForeignKey(JudgeRun, null=True, on_delete=models.SET_NULL, related_name="exports")
    rubric_version = models.ForeignKey(RubricVersion, on_delete=models.RESTRICT,
                                       related_name="exports")
    judge_name = models.CharField(max_length=120)
    model = models.CharField(max_length=200)
    format = models.CharField(max_length=16, choices=ExportFormat.choices)
    calibrated = models.BooleanField()
    forced = models.BooleanField(default=False)
    content_hash = models.CharField(max_length=64)
    report = models.JSONField()
    # The calibration numbers of the list page, per weighted criterion: key, n, kappa and its
    # interval (the report itself can be large; the list does not load it).
    summary = models.JSONField(default=list, blank=True)
    filename = models.CharField(max_length=200)
    artifact = models.BinaryField()
    artifact_sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.format})"

    @property
    def content_type(self) -> str:
        return "application/zip" if self.filename.endswith(".zip") else "application/json"
