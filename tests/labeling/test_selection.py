"""Choosing a session's items: all, a seeded sample, a metadata filter, items without labels,
items where a judge run and the human reference disagree."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.judging.models import JudgeRun, RunKind, RunStatus, Verdict
from apps.labeling.models import GoldLabel, HumanLabel, LabelSource
from apps.labeling.selection import select_item_ids
from tests.labeling.helpers import make_dataset, make_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(personas):
    version = make_version(personas.project)
    dataset = make_dataset(personas.project, items=10, metadata=lambda n: {
        "split": "test" if n % 3 == 0 else "train", "n": n, "hard": n == 4,
        "a__b": "weird" if n == 5 else "plain"})
    return version, dataset


def _ids(dataset, *externals) -> list[int]:
    by_external = dict(dataset.items.values_list("external_id", "id"))
    return [by_external[e] for e in externals]


def _select(world, **selection):
    version, dataset = world
    return select_item_ids(dataset=dataset, version=version, selection=selection)


def test_all_items_in_dataset_order(world):
    assert _select(world, mode="all") == _ids(world[1], *[f"i{n}" for n in range(10)])


def test_a_sample_is_reproducible_with_its_seed_and_keeps_dataset_order(world):
    first = _select(world, mode="sample", size=4, seed=7)
    assert first == _select(world, mode="sample", size=4, seed=7) and len(first) == 4
    assert first == sorted(first, key=_select(world, mode="all").index)
    assert first != _select(world, mode="sample", size=4, seed=8)
    assert len(_select(world, mode="sample", size=50, seed=1)) == 10


@pytest.mark.parametrize("text,expected", [
    ("split=test", ["i0", "i3", "i6", "i9"]),
    ("n=4", ["i4"]),
    ("hard=true", ["i4"]),
    ("a__b=weird", ["i5"]),
    ("split=nothing", []),
])
def test_a_metadata_filter_matches_text_numbers_and_booleans(world, text, expected):
    assert _select(world, mode="filter", filter=text) == _ids(world[1], *expected)


def test_a_filter_without_equals_is_refused(world):
    with pytest.raises(ValidationError):
        _select(world, mode="filter", filter="split")


def test_items_without_labels_yet_ignore_labels_on_another_scale(world):
    version, dataset = world
    items = dict(dataset.items.values_list("external_id", "id"))
    HumanLabel.objects.create(item_id=items["i0"], criterion_key="correct",
                              scale_signature="ordinal:1,2,3", annotator="a", value="2",
                              source=LabelSource.IMPORT)
    HumanLabel.objects.create(item_id=items["i1"], criterion_key="correct",
                              scale_signature="ordinal:1,2,3,4,5", annotator="a", value="2",
                              source=LabelSource.IMPORT)
    chosen = _select(world, mode="unlabelled")
    assert items["i0"] not in chosen and items["i1"] in chosen and len(chosen) == 9


def test_items_where_judge_and_reference_disagree(personas, world):
    version, dataset = world
    items = dict(dataset.items.values_list("external_id", "id"))
    run = JudgeRun.objects.create(project=personas.project, rubric_version=version,
                                  dataset=dataset, name="j", kind=RunKind.IMPORTED,
                                  status=RunStatus.COMPLETED)

    def label(external, *values):
        for n, v in enumerate(values):
            HumanLabel.objects.create(item_id=items[external], criterion_key="correct",
                                      scale_signature="ordinal:1,2,3", annotator=f"a{n}",
                                      value=str(v), source=LabelSource.IMPORT)

    label("i0", 2, 2, 3)  # majority 2, judge 2: agree
    label("i1", 1, 1)  # majority 1, judge 3: disagree
    label("i2", 1, 3)  # tie: no reference
    label("i3", 1, 1)  # gold 3 overrides, judge 3: agree
    GoldLabel.objects.create(item_id=items["i3"], criterion_key="correct",
                             scale_signature="ordinal:1,2,3", value="3")
    for external, value in (("i0", "2"), ("i1", "3"), ("i2", "2"), ("i3", "3"), ("i4", "1")):
        Verdict.objects.create(run=run, item_id=items[external], criterion_key="correct",
                               value=value)
    assert _select(world, mode="disagree", run=run.pk) == [items["i1"]]
    with pytest.raises(ValidationError):
        _select(world, mode="disagree", run=None)


def test_listed_items_keep_dataset_order_and_an_unknown_id_is_named(world):
    from apps.labeling.selection import parse_item_list

    assert parse_item_list("i7\n\n  i2 \ni7\n") == ["i7", "i2"]
    assert _select(world, mode="items", ids=["i7", "i2"]) == _ids(world[1], "i2", "i7")
    with pytest.raises(ValidationError) as err:
        _select(world, mode="items", ids=["i2", "nope", "i99"])
    assert err.value.message_dict["items"] == ["2 id(s) not in 'answers': 'i99', 'nope'"]
    for bad in ([], None, "i2", [""], [3]):
        with pytest.raises(ValidationError, match="one per line"):
            _select(world, mode="items", ids=bad)
