from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.projects.models import Project


class Kind(models.TextChoices):
    POINTWISE = "pointwise", "Pointwise (prompt, response)"
    PAIRWISE = "pairwise", "Pairwise (prompt, response A, response B)"


class Dataset(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.TextField(blank=True)
    # Some public sets carry ratings only (their texts are licensed elsewhere); pages say so.
    texts_available = models.BooleanField(default=True)
    # Kept in step by the importer, so list pages never COUNT(*) a large table.
    item_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="dataset_name_unique"),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_pairwise(self) -> bool:
        return self.kind == Kind.PAIRWISE


class Item(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=200)
    position = models.PositiveIntegerField()
    prompt = models.TextField(blank=True)
    response = models.TextField(blank=True)
    response_a = models.TextField(blank=True)
    response_b = models.TextField(blank=True)
    reference = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "external_id"], name="item_id_unique"),
        ]
        indexes = [models.Index(fields=["dataset", "position"], name="item_position_idx")]
        ordering = ["dataset", "position"]

    def __str__(self) -> str:
        return self.external_id

    def fields(self) -> dict:
        """The item's text fields, as prompting.build_messages wants them."""
        return {
            "prompt": self.prompt,
            "response": self.response,
            "response_a": self.response_a,
            "response_b": self.response_b,
            "reference": self.reference,
        }
