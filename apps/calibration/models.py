"""What calibration stores: the locked development / test split of a rubric's labelled items on
a dataset, and every look at test results (docs/decisions/0014).

The split is decided once and never redrawn: items labelled later join it by a seeded hash of
their text, so the parts only grow. Items with the same text (same content hash) always share
a part, so a development item used as a few-shot example cannot carry a test item's text.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.datasets.models import Dataset, Item
from apps.rubrics.models import Rubric, RubricVersion


class Part(models.TextChoices):
    DEV = "dev", "Development"
    TEST = "test", "Test"


class ReferenceRule(models.TextChoices):
    MAJORITY = "majority", "Majority of the annotators (ties left out)"
    MEDIAN = "median", "Median of the annotators (ordinal criteria)"


class CalibrationSplit(models.Model):
    """The development / test split of one rubric's labelled items on one dataset."""

    rubric = models.ForeignKey(Rubric, on_delete=models.CASCADE, related_name="splits")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="splits")
    seed = models.PositiveIntegerField(default=0)
    test_share = models.FloatField(default=0.3)
    # The criterion whose reference value stratified the first draw ("" when none had one).
    stratified_by = models.CharField(max_length=60, blank=True)
    # How ordinal criteria turn several annotators into one reference; it can change until
    # the first look at test results, then it is locked with the split.
    ordinal_reference = models.CharField(max_length=16, choices=ReferenceRule.choices,
                                         default=ReferenceRule.MAJORITY)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rubric", "dataset"], name="calibration_split_unique"),
            models.CheckConstraint(condition=models.Q(test_share__gt=0, test_share__lt=1),
                                   name="calibration_split_share_range"),
        ]

    def __str__(self) -> str:
        return f"split of {self.rubric_id} on {self.dataset_id}"


class SplitItem(models.Model):
    split = models.ForeignKey(CalibrationSplit, on_delete=models.CASCADE, related_name="items")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    part = models.CharField(max_length=4, choices=Part.choices)
    # sha256 of the item's texts (apps/calibration/splits.py item_content_hash)
    content_hash = models.CharField(max_length=64)
    # The first draw's stratum (the reference value), or "later" for items labelled afterwards.
    stratum = models.CharField(max_length=80, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["split", "item"], name="split_item_unique"),
        ]
        indexes = [models.Index(fields=["split", "part"], name="split_item_part_idx"),
                   models.Index(fields=["split", "content_hash"], name="split_item_hash_idx")]

    def __str__(self) -> str:
        return f"{self.item_id}: {self.part}"


class TestLook(models.Model):
    """Someone (or a command, or an export) saw a result computed on test items."""

    __test__ = False  # not a pytest test class, whatever its name

    split = models.ForeignKey(CalibrationSplit, on_delete=models.CASCADE, related_name="looks")
    version = models.ForeignKey(RubricVersion, on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey("judging.JudgeRun", null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=32)  # page, index, json, command, api, export
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["split", "version"], name="test_look_version_idx")]

    def __str__(self) -> str:
        return f"look at v{self.version_id} ({self.source})"
