"""The locked development / test split: drawn once, seeded, stratified, stored; grows but never
redraws; identical texts share a part; the gate reads test items (or all, marked, when too few);
every look at test is recorded and many looks bring a warning."""

from __future__ import annotations

import io
import json
from collections import Counter

import pytest
from django.core.management import call_command

from apps.calibration.looks import WARN_AFTER
from apps.calibration.models import CalibrationSplit, SplitItem, TestLook
from apps.calibration.report import Thresholds, calibration_report, load_inputs
from apps.calibration.splits import draw, item_content_hash
from apps.rubrics import content as content_mod
from apps.rubrics.services import rubric_import
from tests.calibration.worlds import make_world, ordinal_spec

pytestmark = pytest.mark.django_db
GATE = Thresholds(min_n=20, min_kappa_lower=0.0, min_kappa=0.5, min_human_alpha=0.0)


def _labelled_world(personas, n=200, judge_right=lambda k: True):
    world = make_world(personas.project, n=n)
    rows, verdicts = [], {}
    for k in range(n):
        truth = k % 3 + 1
        rows += [(k, "quality", "ann1", truth), (k, "quality", "ann2", truth)]
        verdicts[k] = truth if judge_right(k) else truth % 3 + 1
    world.labels(rows)
    run = world.judge("judge", verdicts)
    return world, run


def test_the_draw_is_seeded_stratified_and_keeps_identical_texts_together():
    ids = set(range(1000))
    hashes = {i: f"h{i // 2}" for i in ids}  # pairs of items share their text
    strata = {i: str(i % 4) for i in ids}
    parts = draw(ids, hashes, strata, seed=3, test_share=0.3)
    assert parts == draw(ids, hashes, strata, seed=3, test_share=0.3)
    assert parts != draw(ids, hashes, strata, seed=4, test_share=0.3)
    for i in range(0, 1000, 2):
        assert parts[i] == parts[i + 1]  # same text, same part
    # Strata are taken from a group's first item; each gets its 30 %.
    per_stratum = Counter((strata[i - i % 2], parts[i]) for i in ids)
    for stratum in "02":
        total = per_stratum[(stratum, "test")] + per_stratum[(stratum, "dev")]
        assert per_stratum[(stratum, "test")] == pytest.approx(0.3 * total, abs=2)


def test_content_hash_ignores_surrounding_space_and_tells_textless_items_apart():
    a = item_content_hash({"prompt": "Q", "response": "A"})
    assert a == item_content_hash({"prompt": " Q\n", "response": "A "})
    assert a != item_content_hash({"prompt": "Q", "response": "B"})
    assert (item_content_hash({}, external_id="1") != item_content_hash({}, external_id="2"))


def test_the_first_use_draws_and_stores_the_split_once(personas):
    world, run = _labelled_world(personas)
    report = calibration_report(version=world.version, dataset=world.dataset, run=run,
                                thresholds=GATE)
    split = CalibrationSplit.objects.get()
    assert (split.seed, split.test_share, split.stratified_by) == (0, 0.3, "quality")
    parts = dict(SplitItem.objects.values_list("item_id", "part"))
    assert len(parts) == 200 and Counter(parts.values()) == {"dev": 140, "test": 60}
    assert report["split"]["n_test"] == 60 and report["items"]["part"] == "test"
    assert report["criteria"]["quality"]["n"] == 60 and report["items"]["decides_gate"]
    # Stratified by the reference: each level has its 30 %.
    by_level = Counter((world.items.index(next(i for i in world.items if i.pk == pk)) % 3, p)
                       for pk, p in parts.items())
    for level in range(3):
        total = by_level[(level, "test")] + by_level[(level, "dev")]
        assert by_level[(level, "test")] == round(0.3 * total)
    # A second report neither redraws nor adds rows.
    calibration_report(version=world.version, dataset=world.dataset, run=run, thresholds=GATE)
    assert dict(SplitItem.objects.values_list("item_id", "part")) == parts
    assert CalibrationSplit.objects.count() == 1


def test_items_labelled_later_join_without_moving_anyone(personas):
    world = make_world(personas.project, n=120, texts=lambda k: f"Answer {k % 100}.",
                       prompts=lambda k: f"Question {k % 100}?")
    world.labels([(k, "quality", "ann1", k % 3 + 1) for k in range(60)])
    load_inputs(world.version, world.dataset, None)
    before = dict(SplitItem.objects.values_list("item_id", "part"))
    world.labels([(k, "quality", "ann1", k % 3 + 1) for k in range(60, 120)])
    inputs = load_inputs(world.version, world.dataset, None)
    after = dict(SplitItem.objects.values_list("item_id", "part"))
    assert len(after) == 120 and all(after[i] == p for i, p in before.items())
    assert inputs.split.parts == after
    assert set(SplitItem.objects.filter(item_id__in=[i.pk for i in world.items[60:]])
               .values_list("stratum", flat=True)) == {"later"}
    # Items 100..119 repeat the texts of items 0..19: they join their twin's part.
    for k in range(100, 120):
        assert after[world.items[k].pk] == after[world.items[k - 100].pk]


def test_the_gate_reads_test_items_and_dev_items_decide_nothing(personas):
    # The judge is right on every item whose index is even: dev and test differ.
    world, run = _labelled_world(personas, judge_right=lambda k: k % 2 == 0)
    test = calibration_report(version=world.version, dataset=world.dataset, run=run,
                              thresholds=GATE)
    dev = calibration_report(version=world.version, dataset=world.dataset, run=run,
                             thresholds=GATE, part="dev")
    split = load_inputs(world.version, world.dataset, run).split
    assert test["criteria"]["quality"]["n"] == len(split.test_ids) == 60
    assert dev["criteria"]["quality"]["n"] == len(split.dev_ids) == 140
    assert dev["gate"]["passed"] is False
    assert dev["gate"]["reasons"][0].startswith("not decided on dev items")
    assert "not decided" not in " ".join(test["gate"]["reasons"])


def test_too_few_test_items_fall_back_to_all_items_and_say_so(personas):
    world, run = _labelled_world(personas, n=40)
    report = calibration_report(version=world.version, dataset=world.dataset, run=run,
                                thresholds=GATE)
    assert report["items"]["fallback"] is True and report["items"]["part"] == "all"
    assert report["items"]["decides_gate"] is True
    assert report["criteria"]["quality"]["n"] == 40
    assert "Fallback: the test split holds 12 items, fewer than the gate's n = 20" in (
        report["items"]["sentence"])
    assert report["gate"]["passed"] is True  # perfect agreement, on all items (marked)


def test_every_look_at_test_is_recorded_and_many_versions_bring_a_warning(personas):
    world, run = _labelled_world(personas)
    calibration_report(version=world.version, dataset=world.dataset, run=run, thresholds=GATE,
                       user=personas.editor, source="page")
    calibration_report(version=world.version, dataset=world.dataset, run=run, thresholds=GATE,
                       part="dev")  # development items: not a look at test
    look = TestLook.objects.get()
    assert (look.user, look.source, look.version, look.run) == (personas.editor, "page",
                                                                world.version, run)
    # Later versions of the rubric, each judged and checked against the same test items.
    for number in range(2, WARN_AFTER + 3):
        spec = ordinal_spec()
        spec["criteria"][0]["scale"]["levels"][0]["anchor"] = f"revision {number}"
        _, version, _ = rubric_import(project=world.project, content=content_mod.validate(spec),
                                      publish=True, note=f"v{number}")
        world.version = version
        other = world.judge(f"judge v{number}", {k: k % 3 + 1 for k in range(200)})
        report = calibration_report(version=version, dataset=world.dataset, run=other,
                                    thresholds=GATE)
        looks = report["test_looks"]
        assert looks["versions_checked"] == number
        assert (looks["warning"] is None) == (number <= WARN_AFTER)
    assert f"{WARN_AFTER + 2} rubric versions have been checked" in looks["warning"]


def test_the_command_records_its_look_and_prints_the_split(personas):
    world, run = _labelled_world(personas)
    out = io.StringIO()
    call_command("calibration_report", "--project", world.project.slug, "--rubric", "r",
                 "--dataset", "d", "--judge", "judge", stdout=out)
    report = json.loads(out.getvalue())
    assert report["split"]["n_test"] == 60 and report["items"]["part"] == "test"
    assert report["test_looks"]["looks"] == 1
    assert TestLook.objects.get().source == "command"
    dev = io.StringIO()
    call_command("calibration_report", "--project", world.project.slug, "--rubric", "r",
                 "--dataset", "d", "--judge", "judge", "--part", "dev", stdout=dev)
    assert json.loads(dev.getvalue())["items"]["part"] == "dev"
    assert TestLook.objects.count() == 1


def test_concurrent_first_uses_draw_one_split(personas):
    """Two requests that both find no split: the second one's insert conflicts and it reads
    the first one's split instead of drawing its own."""
    from apps.calibration import splits

    world, run = _labelled_world(personas, n=30)
    first = load_inputs(world.version, world.dataset, run).split
    original = splits.load_split
    calls = []

    def as_if_not_yet_there(version, dataset):
        calls.append(1)
        return None if len(calls) == 1 else original(version, dataset)

    splits.load_split = as_if_not_yet_there
    try:
        second = load_inputs(world.version, world.dataset, run).split
    finally:
        splits.load_split = original
    assert second.split.pk == first.split.pk and second.parts == first.parts
    assert CalibrationSplit.objects.count() == 1


def test_the_exported_calibration_json_carries_the_split_and_the_looks(personas):
    from apps.exports.services import judge_export, unpack

    world, run = _labelled_world(personas)
    calibration_report(version=world.version, dataset=world.dataset, run=run, thresholds=GATE,
                       user=personas.editor, source="page")
    export = judge_export(run=run, fmt="bundle", force=True, model="openai/fake-judge")
    report = json.loads(unpack(export)["calibration.json"])["report"]
    assert report["items"]["part"] == "test" and report["items"]["decides_gate"] is True
    assert report["criteria"]["quality"]["n"] == report["split"]["n_test"] == 60
    assert report["split"]["seed"] == 0 and report["split"]["test_share"] == 0.3
    assert report["test_looks"]["looks"] == 2  # the page's, and the export's own
    assert report["test_looks"]["versions_checked"] == 1


def test_an_example_hashes_like_the_item_it_was_copied_from():
    from apps.rubrics import content as content_mod

    item = {"prompt": "Q?  \nsecond line \n", "response": "A.\t\n\n"}
    spec = {"rubric": "r", "mode": "pointwise", "criteria": [{"key": "k", "scale": {
        "type": "binary", "levels": [{"value": 0, "anchor": "n"}, {"value": 1, "anchor": "y"}]},
        "examples": [{**item, "value": 1}]}]}
    stored = content_mod.validate(spec)["criteria"][0]["examples"][0]
    assert stored["prompt"] == "Q?\nsecond line"  # the rubric normalises the texts...
    assert item_content_hash(stored) == item_content_hash(item)  # ...and the hash does too
