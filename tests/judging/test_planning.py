"""Starting a judge run: the plan is rows (one Judgment per call, grouped in batches), written
before anything is sent; bad inputs are refused with a reason a user can act on, and the
project's cap on queued calls refuses a run that would spend too much (denial of wallet)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.test import override_settings

from apps.datasets.models import Dataset
from apps.judging.models import BatchStatus, JudgeBatch, Judgment, JudgmentStatus, RunStatus
from apps.judging.planning import (
    RunSettings,
    Subset,
    estimate,
    judge_run_cancel,
    judge_run_resume,
    judge_run_start,
    select_items,
)
from apps.labeling.models import HumanLabel, LabelSource
from apps.rubrics.services import rubric_draft
from tests.judging.helpers import make_pairwise, make_pointwise

FAKE_BASE = "http://127.0.0.1:9/v1"  # never called: nothing here runs a batch


def settings_for(**overrides) -> RunSettings:
    return RunSettings(**{"model": "openai/fake-judge", "api_base": FAKE_BASE, **overrides})


ALL = Subset()


def start(personas, version, dataset, *, subset=ALL, **overrides):
    return judge_run_start(project=personas.project, version=version, dataset=dataset,
                           run_settings=settings_for(**overrides), subset=subset)


def refusal(personas, version, dataset, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        start(personas, version, dataset, **kwargs)
    return caught.value.message_dict


@pytest.fixture
def pointwise(personas):
    return make_pointwise(personas.project, items=10)


# -- the plan -----------------------------------------------------------------------------------
def test_a_run_plans_one_row_per_item_criterion_and_sample(personas, pointwise):
    version, dataset = pointwise
    run = start(personas, version, dataset, samples=3)
    assert run.status == RunStatus.QUEUED
    assert run.planned_calls == 10 * 2 * 3 == Judgment.objects.filter(run=run).count()
    assert run.item_count == 10
    keys = Judgment.objects.filter(run=run).values("criterion_key").annotate(n=Count("id"))
    assert {row["criterion_key"]: row["n"] for row in keys} == {"correct": 30, "clear": 30}
    assert set(Judgment.objects.filter(run=run).values_list("sample", flat=True)) == {0, 1, 2}
    assert set(Judgment.objects.filter(run=run).values_list("order", flat=True)) == {""}
    assert not Judgment.objects.filter(run=run).exclude(status=JudgmentStatus.PENDING).exists()


def test_a_pairwise_run_asks_both_orders(personas):
    version, dataset = make_pairwise(personas.project, items=4)
    run = start(personas, version, dataset, samples=2)
    assert run.planned_calls == 4 * 1 * 2 * 2
    orders = Judgment.objects.filter(run=run).values("order").annotate(n=Count("id"))
    assert {row["order"]: row["n"] for row in orders} == {"AB": 8, "BA": 8}


def test_the_run_keeps_a_copy_of_its_settings(personas, pointwise):
    version, dataset = pointwise
    run = start(personas, version, dataset, temperature=0.7, max_tokens=123, concurrency=4,
                timeout_s=9.5, use_cache=False)
    assert (run.model, run.api_base, run.temperature, run.max_tokens, run.concurrency,
            run.timeout_s, run.use_cache) == ("openai/fake-judge", FAKE_BASE, 0.7, 123, 4, 9.5,
                                              False)
    assert run.name == "openai/fake-judge"  # the model when no name is given
    assert run.use_schema is False  # litellm does not know the fake model


@override_settings(JUDGE_BATCH_MIN_CALLS=10, JUDGE_BATCH_WAVES=2, JUDGE_DISPATCH_WINDOW=2)
def test_items_are_grouped_in_batches_and_only_a_window_of_them_is_sent(personas):
    version, dataset = make_pointwise(personas.project, items=12)
    # max(10, 3 x 2) = 10 calls a batch, 2 calls an item: 5 items a batch, 3 batches.
    run = start(personas, version, dataset, concurrency=3)
    batches = list(JudgeBatch.objects.filter(run=run).order_by("number"))
    assert [b.number for b in batches] == [0, 1, 2]
    assert [b.status for b in batches] == [BatchStatus.DISPATCHED, BatchStatus.DISPATCHED,
                                           BatchStatus.PENDING]
    per_batch = dict(Judgment.objects.filter(run=run).values("batch").annotate(n=Count("id"))
                     .values_list("batch", "n"))
    assert per_batch == {0: 10, 1: 10, 2: 4}
    # All calls of one item are in the same batch, so a batch can build its items' verdicts.
    spread = Judgment.objects.filter(run=run).values("item_id").annotate(
        n=Count("batch", distinct=True))
    assert {row["n"] for row in spread} == {1}


# -- which items ----------------------------------------------------------------------------------
def test_the_labelled_subset_takes_items_with_a_label_on_a_criterion_of_the_version(
        personas, pointwise):
    version, dataset = pointwise
    items = list(dataset.items.order_by("position"))
    signature = version.criteria.get(key="correct").scale_signature
    for index in (1, 3):
        HumanLabel.objects.create(item=items[index], criterion_key="correct",
                                  scale_signature=signature, annotator="ann", value="2",
                                  source=LabelSource.IMPORT)
    # A label on another scale, or on a criterion the version does not have, does not count.
    HumanLabel.objects.create(item=items[5], criterion_key="correct", scale_signature="ordinal:1,2",
                              annotator="ann", value="2", source=LabelSource.IMPORT)
    HumanLabel.objects.create(item=items[6], criterion_key="gone", scale_signature=signature,
                              annotator="ann", value="2", source=LabelSource.IMPORT)
    run = start(personas, version, dataset, subset=Subset(kind="labelled"))
    judged = set(Judgment.objects.filter(run=run).values_list("item__external_id", flat=True))
    assert judged == {"i1", "i3"}
    assert run.planned_calls == 2 * 2


def test_a_random_sample_is_reproducible_with_its_seed(personas, pointwise):
    version, dataset = pointwise
    first = select_items(dataset, version, Subset(kind="sample", size=4, seed=7))
    again = select_items(dataset, version, Subset(kind="sample", size=4, seed=7))
    other = select_items(dataset, version, Subset(kind="sample", size=4, seed=8))
    assert first == again and len(first) == 4 and len(set(first)) == 4
    assert other != first
    assert set(first) <= set(dataset.items.values_list("pk", flat=True))
    run = start(personas, version, dataset, subset=Subset(kind="sample", size=4, seed=7))
    assert set(Judgment.objects.filter(run=run).values_list("item_id", flat=True)) == set(first)


def test_a_sample_larger_than_the_dataset_takes_every_item(personas, pointwise):
    version, dataset = pointwise
    assert len(select_items(dataset, version, Subset(kind="sample", size=500, seed=1))) == 10


def test_a_sample_without_a_size_is_refused(personas, pointwise):
    version, dataset = pointwise
    assert "subset" in refusal(personas, version, dataset, subset=Subset(kind="sample"))


def test_a_subset_with_no_item_is_refused(personas, pointwise):
    version, dataset = pointwise
    errors = refusal(personas, version, dataset, subset=Subset(kind="labelled"))
    assert "nothing to judge" in errors["subset"][0]


# -- refusals -------------------------------------------------------------------------------------
def test_an_unpublished_version_is_refused(personas, pointwise):
    version, dataset = pointwise
    draft = rubric_draft(rubric=version.rubric)
    errors = refusal(personas, draft, dataset)
    assert "Publish" in errors["version"][0]
    assert not Judgment.objects.exists()


def test_a_pointwise_rubric_on_a_pairwise_dataset_is_refused(personas, pointwise):
    version, _ = pointwise
    _, pairs = make_pairwise(personas.project, items=2)
    errors = refusal(personas, version, pairs)
    assert errors["dataset"] == ["A pointwise rubric needs a pointwise dataset."]


def test_a_ratings_only_dataset_is_refused(personas, pointwise):
    version, dataset = pointwise
    Dataset.objects.filter(pk=dataset.pk).update(texts_available=False)
    dataset.refresh_from_db()
    errors = refusal(personas, version, dataset)
    assert "ratings only" in errors["dataset"][0]


def test_a_dataset_of_another_project_is_refused(personas, pointwise):
    version, _ = pointwise
    _, foreign = make_pointwise(personas.other_project, items=2)
    assert "dataset" in refusal(personas, version, foreign)


@pytest.mark.parametrize("field,value", [("samples", 0), ("samples", 21), ("concurrency", 0),
                                         ("temperature", 2.5), ("max_tokens", 0),
                                         ("timeout_s", 0.5), ("model", "  "),
                                         ("api_base", "gpu-box:8000/v1"),
                                         ("api_base", "ftp://gpu-box/v1")])
def test_settings_out_of_range_are_refused(personas, pointwise, field, value):
    version, dataset = pointwise
    assert field in refusal(personas, version, dataset, **{field: value})


def test_a_missing_key_is_named_before_anything_is_planned(personas, pointwise, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    version, dataset = pointwise
    errors = refusal(personas, version, dataset, model="openai/gpt-4.1-mini", api_base="")
    assert "OPENAI_API_KEY" in errors["model"][0]
    assert not Judgment.objects.exists()


def test_a_self_hosted_server_needs_no_key(personas, pointwise, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    version, dataset = pointwise
    run = start(personas, version, dataset, model="openai/my-vllm-model")
    assert run.planned_calls == 20


# -- denial of wallet -----------------------------------------------------------------------------
def test_the_cap_refuses_a_run_that_would_queue_too_many_calls(personas, pointwise):
    version, dataset = pointwise
    personas.project.max_queued_calls = 59
    personas.project.save()
    errors = refusal(personas, version, dataset, samples=3)
    message = errors["subset"][0]
    assert "60 model calls" in message
    assert "cap of 59" in message
    assert "10 items x 2 criteria x 3 samples = 60 calls" in message  # the estimate, spelled out
    assert not Judgment.objects.exists()


def test_the_cap_counts_calls_still_queued_by_other_runs(personas, pointwise):
    version, dataset = pointwise
    personas.project.max_queued_calls = 30
    personas.project.save()
    start(personas, version, dataset)  # 20 calls, pending
    message = refusal(personas, version, dataset)["subset"][0]
    assert "20 already queued" in message


def test_resuming_a_cancelled_run_counts_against_the_cap(personas, pointwise):
    version, dataset = pointwise
    personas.project.max_queued_calls = 30
    personas.project.save()
    first = start(personas, version, dataset)  # 20 calls
    judge_run_cancel(run=first)  # its calls no longer count as queued...
    start(personas, version, dataset)  # ...so another 20 fit
    with pytest.raises(ValidationError) as caught:
        judge_run_resume(run=first)  # but not both
    assert "Resuming would queue 20 model calls" in caught.value.messages[0]
    assert "20 already queued" in caught.value.messages[0]
    first.refresh_from_db()
    assert first.status == RunStatus.CANCELLED


def test_a_run_exactly_at_the_cap_is_allowed(personas, pointwise):
    version, dataset = pointwise
    personas.project.max_queued_calls = 20
    personas.project.save()
    assert start(personas, version, dataset).planned_calls == 20


# -- the estimate ---------------------------------------------------------------------------------
def test_the_estimate_of_an_unpriced_model_has_an_unknown_cost(personas, pointwise):
    version, dataset = pointwise
    ids = select_items(dataset, version, Subset())
    plan = estimate(version=version, dataset=dataset, item_ids=ids,
                    run_settings=settings_for(samples=2))
    assert (plan.items, plan.criteria, plan.samples, plan.orders, plan.calls) == (10, 2, 2, 1, 40)
    assert plan.prompt_tokens_per_call > 50
    assert plan.cost_usd is None
    assert "cost unknown" in plan.describe()
    assert "40 calls" in plan.describe()


def test_the_estimate_of_a_priced_model_is_a_number(personas, pointwise):
    version, dataset = pointwise
    ids = select_items(dataset, version, Subset())
    plan = estimate(version=version, dataset=dataset, item_ids=ids,
                    run_settings=settings_for(model="openai/gpt-4.1-mini"))
    assert isinstance(plan.cost_usd, float) and 0 < plan.cost_usd < 1
    assert "$" in plan.describe()


def test_the_pairwise_estimate_counts_both_orders(personas):
    version, dataset = make_pairwise(personas.project, items=3)
    ids = select_items(dataset, version, Subset())
    plan = estimate(version=version, dataset=dataset, item_ids=ids, run_settings=settings_for())
    assert (plan.orders, plan.calls) == (2, 6)
    assert "x 2 orders" in plan.describe()
