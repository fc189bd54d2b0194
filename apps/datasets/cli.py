"""Looking up datasets by name (commands, API), with one-line errors that name the choices."""

from __future__ import annotations

from django.core.management.base import CommandError

from apps.datasets.models import Dataset


class NoSuchDataset(LookupError):
    """No dataset of that name in the project; the message names the ones there are."""


def dataset_by_name(project, name: str) -> Dataset:
    # A NUL is never in a name (PostgreSQL refuses it in a query: a 500 instead of this 404).
    dataset = (None if "\x00" in name
               else Dataset.objects.filter(project=project, name=name).first())
    if dataset is None:
        names = list(Dataset.objects.filter(project=project).order_by("name")
                     .values_list("name", flat=True)[:20])
        there = f"; datasets: {', '.join(names)}" if names else "; it has no datasets yet"
        raise NoSuchDataset(f"no dataset '{name}' in project '{project.slug}'{there}")
    return dataset


def dataset_or_error(project, name: str) -> Dataset:
    try:
        return dataset_by_name(project, name)
    except NoSuchDataset as exc:
        raise CommandError(str(exc)) from None
