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


class Rescore(models.Model):
    """A workbench re-score: a small judge run of a rubric's draft over development items.

    The run judges the draft as it is while it runs; what it judged is recorded here (the
    draft's content and its hash at the start), so a later edit of the draft cannot pass the
    run off as evidence for other text (apps/calibration/workbench.py rescore_state).
    """

    rubric = models.ForeignKey(Rubric, on_delete=models.CASCADE, related_name="rescores")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(RubricVersion, on_delete=models.CASCADE, related_name="+")
    run = models.OneToOneField("judging.JudgeRun", on_delete=models.CASCADE,
                               related_name="rescore")
    # The judge whose verdicts are "before" the first re-score (on the published version).
    base_run = models.ForeignKey("judging.JudgeRun", null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    content = models.JSONField()
    content_hash = models.CharField(max_length=64)
    item_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"re-score {self.pk} of {self.rubric_id}"


class ItemMark(models.Model):
    """"The rubric is unclear here": an item of a criterion flagged from the workbench, with a
    note (the note also goes to the rubric's notes for the next revision)."""

    rubric = models.ForeignKey(Rubric, on_delete=models.CASCADE, related_name="item_marks")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    criterion_key = models.CharField(max_length=60)
    note = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["rubric", "item"], name="item_mark_rubric_item_idx")]

    def __str__(self) -> str:
        return f"unclear: {self.criterion_key} of {self.item_id}"


class OptimizerStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    IMPROVED = "improved", "Completed: a better draft found"
    NO_GAIN = "no_gain", "Completed: no proposal beat the draft"
    BUDGET = "budget", "Stopped: the call budget was reached"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


OPTIMIZER_ACTIVE = (OptimizerStatus.QUEUED, OptimizerStatus.RUNNING)


class OptimizerJob(models.Model):
    """Suggest a better draft from the development disagreements (apps/calibration/optimizer.py):
    a few rounds of proposals, each re-scored on development items and kept only if it agrees
    better with the people there. The call budget is fixed before it starts."""

    rubric = models.ForeignKey(Rubric, on_delete=models.CASCADE, related_name="optimizer_jobs")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(RubricVersion, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=OptimizerStatus.choices,
                              default=OptimizerStatus.QUEUED)
    # The judge model that is asked to rewrite and then re-scores every proposal.
    model = models.CharField(max_length=200)
    api_base = models.CharField(max_length=500, blank=True)
    temperature = models.FloatField(default=0.0)
    max_tokens = models.PositiveIntegerField(default=400)
    samples = models.PositiveIntegerField(default=1)
    concurrency = models.PositiveIntegerField(default=16)
    timeout_s = models.FloatField(default=60.0)
    rounds = models.PositiveSmallIntegerField(default=2)
    budget_calls = models.PositiveIntegerField()
    calls_used = models.PositiveIntegerField(default=0)
    # The development items it may read and score (never a test item: checked at the start).
    item_ids = models.JSONField(default=list)
    start_content = models.JSONField()
    start_hash = models.CharField(max_length=64)
    baseline = models.JSONField(default=dict, blank=True)  # criterion key -> dev kappa
    error_message = models.TextField(blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"optimizer {self.pk} of {self.rubric_id}"

    @property
    def is_active(self) -> bool:
        return self.status in OPTIMIZER_ACTIVE


class Proposal(models.Model):
    job = models.ForeignKey(OptimizerJob, on_delete=models.CASCADE, related_name="proposals")
    round = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16)  # "rewrite" or "examples"
    content = models.JSONField(null=True, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    note = models.TextField(blank=True)  # what changed and why
    scores = models.JSONField(default=dict, blank=True)  # criterion key -> dev kappa
    score = models.FloatField(null=True, blank=True)  # weighted mean dev kappa
    best_before = models.FloatField(null=True, blank=True)  # the score it had to beat
    kept = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "round", "id"]

    def __str__(self) -> str:
        return f"proposal {self.pk} ({self.kind}, round {self.round})"
