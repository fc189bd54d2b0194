from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.datasets.models import Dataset, Item
from apps.projects.models import Project
from apps.rubrics.models import RubricVersion


class LabelSource(models.TextChoices):
    IMPORT = "import", "Imported with the dataset"
    SCREEN = "screen", "Labelled on screen"
    LABEL_STUDIO = "labelstudio", "Imported from Label Studio"
    ARGILLA = "argilla", "Imported from Argilla"
    API = "api", "Submitted through the API"


class HumanLabel(models.Model):
    """One annotator's value for one criterion of one item, in one round.

    Labels belong to (item, criterion key, scale signature), not to a rubric version: a new version
    that keeps a criterion's key and scale keeps its labels, one that changes the scale starts
    afresh (DESIGN.md invariants).

    `round` numbers an annotator's repeated labels of the same item: the first is round 1; when
    a later session gives the same person the same item again, their answer is stored as the
    next round beside the earlier one (never over it). Calibration and agreement use each
    annotator's latest round unless told otherwise; the earlier rounds give test-retest
    (intra-rater) agreement (docs/decisions/0009-label-rounds.md).
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
    # Labels made on screen: the session, and for pairwise what was shown where ("AB": A left).
    session = models.ForeignKey("LabelingSession", null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="labels")
    shown_order = models.CharField(max_length=2, blank=True)
    # db_default too: bulk SQL (benchmarks, data migrations) that names no round gets round 1.
    round = models.PositiveSmallIntegerField(default=1, db_default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "criterion_key", "scale_signature", "annotator", "round"],
                name="human_label_round_unique",
            ),
            models.CheckConstraint(condition=models.Q(round__gte=1), name="human_label_round_min"),
        ]
        indexes = [
            models.Index(fields=["criterion_key", "scale_signature"], name="label_criterion_idx"),
            # Adjudication walks a session's labels in item order (agreement.py).
            models.Index(fields=["session", "item"], name="label_session_item_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator}: {self.criterion_key}={self.value}"


class GoldLabel(models.Model):
    """An adjudicated label: the owner's decision where annotators disagree.

    Calibration uses gold where present, else the annotators' majority, else the item has no
    reference (docs/calibration.md).
    """

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="gold_labels")
    criterion_key = models.CharField(max_length=60)
    scale_signature = models.CharField(max_length=255)
    value = models.CharField(max_length=64)
    note = models.TextField(blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "criterion_key", "scale_signature"], name="gold_label_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"gold {self.criterion_key}={self.value}"


class SessionStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class LabelingSession(models.Model):
    """Work for annotators: a pool of items of one dataset, labelled under one published rubric
    version, each item by `overlap` distinct annotators (docs/labeling.md)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE,
                                related_name="labeling_sessions")
    # RESTRICT: a version with sessions cannot be deleted on its own; deleting the project can.
    rubric_version = models.ForeignKey(RubricVersion, on_delete=models.RESTRICT,
                                       related_name="labeling_sessions")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE,
                                related_name="labeling_sessions")
    name = models.CharField(max_length=120)
    overlap = models.PositiveSmallIntegerField(
        default=1, help_text="Distinct annotators per item (k).")
    status = models.CharField(max_length=16, choices=SessionStatus.choices,
                              default=SessionStatus.OPEN)
    claim_ttl_s = models.PositiveIntegerField(
        default=900, help_text="Seconds an item stays claimed before it returns to the pool.")
    # How the items were chosen, e.g. {"mode": "sample", "size": 200, "seed": 1}.
    selection = models.JSONField(default=dict, blank=True)
    item_count = models.PositiveIntegerField(default=0)  # the pool's size, set at creation
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(overlap__gte=1),
                                   name="labeling_session_overlap_min"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_open(self) -> bool:
        return self.status == SessionStatus.OPEN

    @property
    def is_pairwise(self) -> bool:
        return self.dataset.kind == "pairwise"


class SessionAssignee(models.Model):
    """A member who labels in a session. Its row is also the per-user lock: every write of one
    annotator's work takes it first, so two tabs of one person cannot race each other."""

    session = models.ForeignKey(LabelingSession, on_delete=models.CASCADE,
                                related_name="assignees")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+")
    # The annotator's own counts for the labelling screen, changed under this row's lock in
    # the same transaction as the assignment (session pages count the assignments instead).
    done_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "user"], name="session_assignee_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.session}"


class SessionItem(models.Model):
    """One item of a session's pool.

    `active_count` = live claims + done labels of the item in this session; it is changed in the
    same transaction as each claim, skip, expiry, undo and late submit, so "has room" is one
    indexed comparison (active_count < overlap) instead of a count (docs/decisions/0004).
    """

    session = models.ForeignKey(LabelingSession, on_delete=models.CASCADE, related_name="pool")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()
    active_count = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "item"], name="session_item_unique"),
        ]
        indexes = [
            # The claim walks the pool in position order and skips full items inside the index.
            models.Index(fields=["session", "position", "active_count"],
                         name="session_item_claim_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id}:{self.item_id}"


class AssignmentStatus(models.TextChoices):
    CLAIMED = "claimed", "Claimed"
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"


class Assignment(models.Model):
    """One annotator's claim on one pool item, and what became of it. At most one per
    (item, annotator): an annotator never sees an item twice, even after a skip or expiry."""

    session = models.ForeignKey(LabelingSession, on_delete=models.CASCADE,
                                related_name="assignments")
    session_item = models.ForeignKey(SessionItem, on_delete=models.CASCADE,
                                     related_name="assignments")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+")
    status = models.CharField(max_length=16, choices=AssignmentStatus.choices,
                              default=AssignmentStatus.CLAIMED)
    # Pairwise only: "AB" shows response A on the left, "BA" shows B on the left.
    shown_order = models.CharField(max_length=2, blank=True)
    claimed_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=300, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session_item", "user"],
                                    name="assignment_unique"),
        ]
        indexes = [
            models.Index(fields=["session", "user", "status"], name="assignment_user_idx"),
            # Only live claims can expire: a small partial index keeps the sweep cheap.
            models.Index(fields=["session", "expires_at"], name="assignment_live_idx",
                         condition=models.Q(status="claimed")),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.session_item_id}: {self.status}"
