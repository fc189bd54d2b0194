"""A probe run: a judge run (the same planning, batches, workers, call cache and progress page
as any run) over items the probe suite generated from a dataset, with the record of which probe
and which original each probed item came from."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.datasets.models import Dataset, Item
from apps.judging.models import JudgeRun
from apps.projects.models import Project
from apps.rubrics.models import RubricVersion


class ProbeRun(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="probe_runs")
    rubric_version = models.ForeignKey(RubricVersion, on_delete=models.RESTRICT,
                                       related_name="probe_runs")
    # The dataset the items came from, and the hidden dataset that holds the probed items.
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="probe_runs")
    probe_dataset = models.OneToOneField(Dataset, on_delete=models.CASCADE,
                                         related_name="probe_run_of_items")
    run = models.OneToOneField(JudgeRun, on_delete=models.CASCADE, related_name="probe_run")
    # The judge under test as it was named, and the run it was taken from (if one).
    judge = models.CharField(max_length=120)
    base_run = models.ForeignKey(JudgeRun, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    probes = models.JSONField(default=list)
    per_probe = models.PositiveIntegerField(default=50)
    seed = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"probes of {self.judge} #{self.pk}"


class ProbeItem(models.Model):
    """One judged item of a probe run: a probed item, or an untouched original ("original")."""

    probe_run = models.ForeignKey(ProbeRun, on_delete=models.CASCADE, related_name="items")
    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="probe_item")
    probe = models.CharField(max_length=60)
    variant = models.TextField(blank=True)
    original = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["probe_run", "probe"], name="probe_item_probe_idx")]

    def __str__(self) -> str:
        return f"{self.probe} of item {self.original_id}"


def _drop_probe_items(sender, instance: ProbeRun, **kwargs) -> None:
    """The hidden dataset of probed items (and the judge run over it, by cascade) goes with its
    probe run, however the run went (its source dataset, its project or itself deleted): no list
    shows those datasets, so nothing else would ever remove them."""
    Dataset.all_objects.filter(pk=instance.probe_dataset_id).delete()


models.signals.post_delete.connect(_drop_probe_items, sender=ProbeRun,
                                   dispatch_uid="probes.drop_probe_items")
