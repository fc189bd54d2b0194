"""Per-item counts contributed by the apps that stand on datasets.

The item browser shows how many human labels and judge verdicts each item has, but datasets must
not import the models of labeling or judging (DESIGN.md: dependencies point one way). Those apps
register a counter here when they load; the browser asks every registered counter for the items
on one page, one grouped query each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ItemCounter:
    name: str  # column heading, e.g. "labels"
    count: Callable[[Iterable[int]], dict[int, int]]  # item ids -> {item id: count}
    sensitive: bool  # shows judge output: hidden from roles that must label blind


_COUNTERS: dict[str, ItemCounter] = {}


def register_item_counter(
    name: str, count: Callable[[Iterable[int]], dict[int, int]], *, sensitive: bool = False
) -> None:
    _COUNTERS[name] = ItemCounter(name=name, count=count, sensitive=sensitive)


def item_counters(*, include_sensitive: bool) -> list[ItemCounter]:
    return [c for c in _COUNTERS.values() if include_sensitive or not c.sensitive]
