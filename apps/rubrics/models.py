from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from apps.projects.models import Project
from apps.rubrics import scales

EXAMPLE_ORDER = ("prompt", "response", "response_a", "response_b", "reference", "value", "source")


class Mode(models.TextChoices):
    POINTWISE = "pointwise", "Pointwise rubric"
    PAIRWISE = "pairwise", "Pairwise preference"


class Rubric(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rubrics")
    slug = models.SlugField(max_length=60)
    name = models.CharField(max_length=120)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.POINTWISE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "slug"], name="rubric_slug_unique"),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_pairwise(self) -> bool:
        return self.mode == Mode.PAIRWISE


class RubricVersion(models.Model):
    """One version of a rubric. A draft is edited in place; a published version never changes."""

    rubric = models.ForeignKey(Rubric, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    description = models.TextField(blank=True, help_text="The task being judged, in words.")
    system_template = models.TextField(blank=True)
    user_template = models.TextField(blank=True)
    pass_threshold = models.FloatField(default=0.5)
    note = models.TextField(blank=True, help_text="What changed and why.")
    content_hash = models.CharField(max_length=64, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rubric", "number"], name="rubric_version_unique"),
        ]
        ordering = ["rubric", "-number"]

    def __str__(self) -> str:
        state = "published" if self.is_published else "draft"
        return f"{self.rubric.slug} v{self.number} ({state})"

    def save(self, *args, **kwargs) -> None:
        # The last line of defence for immutability; services never try this.
        if self.pk and not kwargs.pop("allow_published_write", False):
            stored = RubricVersion.objects.filter(pk=self.pk).values("published_at").first()
            if stored and stored["published_at"] is not None:
                raise ValidationError("A published rubric version cannot be changed.")
        super().save(*args, **kwargs)

    @property
    def is_published(self) -> bool:
        return self.published_at is not None

    @property
    def short_hash(self) -> str:
        return self.content_hash[:12]


class Criterion(models.Model):
    version = models.ForeignKey(RubricVersion, on_delete=models.CASCADE, related_name="criteria")
    position = models.PositiveIntegerField(default=0)
    key = models.SlugField(max_length=60)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    scale_type = models.CharField(max_length=16, choices=scales.SCALE_CHOICES)
    # [{"value": 1, "label": "...", "anchor": "...", "score": 0.0}] — see apps/rubrics/scales.py
    levels = models.JSONField(default=list)
    weight = models.FloatField(default=1.0)
    # Few-shot examples: [{"prompt", "response" (or "response_a", "response_b"), "reference",
    # "value", "source"}], shown to the judge with this criterion (content.clean_examples).
    examples = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="criterion_key_unique"),
        ]
        ordering = ["version", "position", "id"]

    def __str__(self) -> str:
        return self.key

    def save(self, *args, **kwargs) -> None:
        # A published version's criteria are part of what its hash vouches for.
        if RubricVersion.objects.filter(pk=self.version_id, published_at__isnull=False).exists():
            raise ValidationError("A criterion of a published rubric version cannot be changed.")
        super().save(*args, **kwargs)

    @property
    def scale(self) -> dict:
        return {"type": self.scale_type, "levels": self.levels}

    @property
    def scale_signature(self) -> str:
        return scales.scale_signature(self.scale)

    def as_content(self) -> dict:
        # PostgreSQL's jsonb does not keep the order of keys; put each level's keys back in
        # the documented order, so an export reads (and diffs) the same from any database.
        levels = []
        for level in self.levels:
            ordered = {k: level[k] for k in ("value", "label", "anchor", "score") if k in level}
            levels.append(ordered | level)  # any other key keeps its value, after these
        content = {
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "weight": self.weight,
            "scale": {"type": self.scale_type, "levels": levels},
        }
        if self.examples:  # absent when empty: rubrics without examples keep their hash
            content["examples"] = [
                {k: e[k] for k in (*EXAMPLE_ORDER, *e) if k in e} for e in self.examples]
        return content


class RubricNote(models.Model):
    """A note for the next revision, e.g. from a disagreement found during calibration.

    Open notes are listed on the rubric's draft, where the next version is written.
    """

    rubric = models.ForeignKey(Rubric, on_delete=models.CASCADE, related_name="notes")
    criterion_key = models.CharField(max_length=60, blank=True)
    text = models.TextField()
    source = models.CharField(max_length=300, blank=True, help_text="Where the note came from.")
    resolved = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["resolved", "-created_at"]

    def __str__(self) -> str:
        return self.text[:60]
