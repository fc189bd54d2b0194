"""Looking up datasets by name for management commands, with one-line errors."""

from __future__ import annotations

from django.core.management.base import CommandError

from apps.datasets.models import Dataset


def dataset_or_error(project, name: str) -> Dataset:
    dataset = Dataset.objects.filter(project=project, name=name).first()
    if dataset is None:
        raise CommandError(f"no dataset '{name}' in project '{project.slug}'")
    return dataset
