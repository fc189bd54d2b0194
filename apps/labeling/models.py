from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.datasets.models import Item


class LabelSource(models.TextChoices):
    IMPORT = "import", "Imported with the dataset"
    SCREEN = "screen", "Labelled on screen"


class HumanLabel(models.Model):
    """One annotator's value for one criterion of one item.

    Labels belong to (item, criterion key, scale signature), not to a rubric version: a new version
    that keeps a criterion's key and scale keeps its labels, one that changes the scale starts
    afresh (DESIGN.md invariants).
    """

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="human_labels")
    criterion_key = models.CharField(max_length=60)
    scale_signature = models.CharField(max_length=255)
    annotator = models.CharField(max_length=150)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    value = models.CharField(max_length=64)
    comment = models.TextField(blank=True)
    source = models.CharField(max_length=16, choices=LabelSource.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "criterion_key", "scale_signature", "annotator"],
                name="human_label_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["criterion_key", "scale_signature"], name="label_criterion_idx")
        ]

    def __str__(self) -> str:
        return f"{self.annotator}: {self.criterion_key}={self.value}"
