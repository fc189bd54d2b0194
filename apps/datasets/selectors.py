"""Reads for datasets and items, and the loaders every dataset view uses (STYLE.md 2)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from apps.datasets.counters import item_counters
from apps.datasets.models import Dataset, Item
from apps.projects.access import Need, ProjectAccess, get_project_for_user

PAGE_SIZE = 50


def get_dataset_for_user(
    user, project_slug: str, dataset_id: int, *, need: Need = Need.READ
) -> tuple[Dataset, ProjectAccess]:
    access = get_project_for_user(user, project_slug, need=need)
    # all_objects: the items a probe run generated are not listed anywhere, but the links from
    # its judge run's page to them work (apps/probes).
    dataset = get_object_or_404(Dataset.all_objects, project=access.project, pk=dataset_id)
    return dataset, access


def get_item_for_user(
    user, project_slug: str, dataset_id: int, item_id: int, *, need: Need = Need.READ
) -> tuple[Item, ProjectAccess]:
    dataset, access = get_dataset_for_user(user, project_slug, dataset_id, need=need)
    item = get_object_or_404(Item, dataset=dataset, pk=item_id)
    return item, access


def item_search(dataset: Dataset, query: str) -> QuerySet[Item]:
    items = Item.objects.filter(dataset=dataset)
    query = query.strip()
    if query:
        text = (
            Q(external_id=query)
            | Q(prompt__icontains=query)
            | Q(response__icontains=query)
            | Q(response_a__icontains=query)
            | Q(response_b__icontains=query)
            | Q(reference__icontains=query)
        )
        items = items.filter(text)
    return items.order_by("position")


@dataclass
class ItemPage:
    rows: list[tuple[Item, dict[str, int]]]
    counter_names: list[str]
    number: int
    has_previous: bool
    has_next: bool
    total: int | None  # None while searching: counting matches would scan the table again

    @property
    def pages(self) -> int | None:
        return None if self.total is None else max(1, -(-self.total // PAGE_SIZE))


def item_page(
    dataset: Dataset, *, query: str, page: int, include_sensitive: bool
) -> ItemPage:
    """One page of items with per-item counts; a fixed number of queries whatever the size.

    Without a search the page is a range of positions (the index on (dataset, position)), so
    page 2,000 costs what page 1 costs; with a search it is an offset over the matches.
    """
    page = max(page, 1)
    fields = ("id", "external_id", "position", "prompt", "response", "response_a",
              "response_b", "reference")
    if query.strip():
        qs = item_search(dataset, query).only(*fields)
        window = list(qs[(page - 1) * PAGE_SIZE : page * PAGE_SIZE + 1])
        total = None
    else:
        start = (page - 1) * PAGE_SIZE
        qs = Item.objects.filter(
            dataset=dataset, position__gte=start, position__lte=start + PAGE_SIZE
        ).only(*fields).order_by("position")
        window = list(qs)
        total = dataset.item_count
    has_next = len(window) > PAGE_SIZE
    items = window[:PAGE_SIZE]
    counters = item_counters(include_sensitive=include_sensitive)
    ids = [item.pk for item in items]
    counts = {c.name: c.count(ids) if ids else {} for c in counters}
    rows = [(item, {name: counts[name].get(item.pk, 0) for name in counts}) for item in items]
    return ItemPage(
        rows=rows, counter_names=[c.name for c in counters], number=page,
        has_previous=page > 1, has_next=has_next, total=total,
    )
