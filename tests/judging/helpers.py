"""Building a small judged world: a published rubric and a dataset whose items tell the fake
model what to answer (FAKE_VERDICT=...), so every test knows the expected verdicts."""

from __future__ import annotations

import time

from apps.datasets.models import Dataset, Item, Kind
from apps.judging.models import JudgeRun, Judgment, JudgmentStatus
from apps.judging.planning import RunSettings, judge_run_start
from apps.rubrics import content as content_mod
from apps.rubrics.services import rubric_import

POINTWISE = {
    "rubric": "quality",
    "name": "Quality",
    "mode": "pointwise",
    "description": "Short answers to short questions.",
    "criteria": [
        {"key": "correct", "weight": 2, "scale": {"type": "ordinal", "levels": [
            {"value": i, "anchor": f"level {i}"} for i in range(1, 6)]}},
        # Same scale as "correct": the fake answers one FAKE_VERDICT per item for both.
        {"key": "clear", "weight": 1, "scale": {"type": "ordinal", "levels": [
            {"value": i, "anchor": f"clarity {i}"} for i in range(1, 6)]}},
    ],
}
PAIRWISE = {
    "rubric": "preference",
    "name": "Preference",
    "mode": "pairwise",
    "criteria": [{"key": "overall", "weight": 1, "scale": {"type": "pairwise", "levels": [
        {"value": "A", "anchor": "A"}, {"value": "B", "anchor": "B"},
        {"value": "tie", "anchor": "tie"}]}}],
}


def expected_level(index: int) -> int:
    return index % 5 + 1


def make_pointwise(project, *, items: int, directive: bool = True):
    _, version, _ = rubric_import(project=project, content=content_mod.validate(POINTWISE),
                                  publish=True, note="v1")
    dataset = Dataset.objects.create(project=project, name="answers", kind=Kind.POINTWISE,
                                     item_count=items)
    Item.objects.bulk_create(
        Item(dataset=dataset, external_id=f"i{n}", position=n, prompt=f"Question {n}?",
             response=(f"Answer {n}. FAKE_VERDICT={expected_level(n)}" if directive
                       else f"Answer {n}."))
        for n in range(items)
    )
    return version, dataset


def make_pairwise(project, *, items: int):
    _, version, _ = rubric_import(project=project, content=content_mod.validate(PAIRWISE),
                                  publish=True, note="v1")
    dataset = Dataset.objects.create(project=project, name="pairs", kind=Kind.PAIRWISE,
                                     item_count=items)
    Item.objects.bulk_create(
        Item(dataset=dataset, external_id=f"p{n}", position=n, prompt=f"Task {n}",
             response_a=f"first answer {n}", response_b=f"second answer {n}")
        for n in range(items)
    )
    return version, dataset


def start(project, version, dataset, fake, **overrides) -> JudgeRun:
    settings = {"model": "openai/fake-judge", "api_base": fake.url, "concurrency": 10,
                "timeout_s": 10.0, **overrides}
    return judge_run_start(project=project, version=version, dataset=dataset,
                           run_settings=RunSettings(**settings))


def wait_for(predicate, *, timeout: float, what: str, worker=None):
    began = time.monotonic()
    deadline = began + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            print(f"waited {time.monotonic() - began:.1f}s for {what}")
            return value
        time.sleep(0.2)
    detail = f"\n--- worker log ---\n{worker.output()[-4000:]}" if worker else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")


def done_count(run) -> int:
    return Judgment.objects.filter(run=run).exclude(status=JudgmentStatus.PENDING).count()


def run_status(run) -> str:
    run.refresh_from_db(fields=["status"])
    return run.status
