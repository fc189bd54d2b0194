"""Background imports: a large dataset file is stored in the database in chunks and imported by
a worker, with progress the upload page polls (docs/decisions/0008-uploads-and-background-
imports.md). The database holds the file, not the web server's disk, so any worker on any
machine can read it."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.projects.models import Project


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Imported"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    dataset_name = models.CharField(max_length=200)
    filename = models.CharField(max_length=255)
    fmt = models.CharField(max_length=8)
    kind = models.CharField(max_length=16, blank=True)
    rubric_slug = models.CharField(max_length=60, blank=True)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=ImportStatus.choices,
                              default=ImportStatus.QUEUED)
    bytes_total = models.BigIntegerField(default=0)
    bytes_read = models.BigIntegerField(default=0)
    summary = models.TextField(blank=True)
    problems = models.JSONField(default=list, blank=True)  # [{"line", "field", "message"}]
    dataset = models.ForeignKey("datasets.Dataset", null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"import of {self.filename} into {self.dataset_name} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (ImportStatus.QUEUED, ImportStatus.RUNNING)

    @property
    def percent(self) -> int:
        if not self.bytes_total:
            return 0
        return min(100, int(100 * self.bytes_read / self.bytes_total))


class ImportChunk(models.Model):
    """One piece of the uploaded file (IMPORT_CHUNK bytes); deleted once the import ends."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "number"],
                                               name="import_chunk_unique")]

    def __str__(self) -> str:
        return f"chunk {self.number} of import {self.job_id}"
