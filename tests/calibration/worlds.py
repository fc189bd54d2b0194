"""Small calibration worlds for tests: a published rubric, items with human labels, and an
imported judge whose verdicts are given, so every figure is known in advance."""

from __future__ import annotations

from dataclasses import dataclass

from apps.datasets.models import Dataset, Item, Kind
from apps.judging.models import JudgeRun, RunKind, RunStatus, Verdict
from apps.labeling.models import HumanLabel, LabelSource
from apps.rubrics import content as content_mod
from apps.rubrics import scales
from apps.rubrics.services import rubric_import


def ordinal_spec(keys=("quality",), levels: int = 3, slug: str = "r") -> dict:
    return {"rubric": slug, "name": slug.upper(), "mode": "pointwise", "criteria": [
        {"key": key, "weight": 1, "scale": {"type": "ordinal", "levels": [
            {"value": v, "anchor": f"{key} level {v}"} for v in range(1, levels + 1)]}}
        for key in keys]}


@dataclass
class World:
    project: object
    version: object
    dataset: Dataset
    items: list[Item]
    spec: dict

    def scale(self, key: str) -> dict:
        return next(c["scale"] for c in content_mod.validate(self.spec)["criteria"]
                    if c["key"] == key)

    def label(self, item: Item, key: str, annotator: str, value) -> None:
        HumanLabel.objects.create(item=item, criterion_key=key, annotator=annotator,
                                  value=str(value), source=LabelSource.IMPORT,
                                  scale_signature=scales.scale_signature(self.scale(key)))

    def labels(self, rows) -> None:
        """rows: (item index, key, annotator, value)."""
        HumanLabel.objects.bulk_create(
            HumanLabel(item=self.items[i], criterion_key=key, annotator=who, value=str(value),
                       source=LabelSource.IMPORT,
                       scale_signature=scales.scale_signature(self.scale(key)))
            for i, key, who, value in rows)

    def judge(self, name: str, values: dict, *, key: str | None = None) -> JudgeRun:
        """values: item index -> value (for `key`, default the first criterion)."""
        key = key or self.spec["criteria"][0]["key"]
        run = JudgeRun.objects.create(project=self.project, rubric_version=self.version,
                                      dataset=self.dataset, name=name, kind=RunKind.IMPORTED,
                                      status=RunStatus.COMPLETED)
        Verdict.objects.bulk_create(
            Verdict(run=run, item=self.items[i], criterion_key=key, value=str(v))
            for i, v in values.items())
        return run


def make_world(project, *, n: int, spec: dict | None = None, texts=None, prompts=None,
               name: str = "d") -> World:
    spec = spec or ordinal_spec()
    _, version, _ = rubric_import(project=project, content=content_mod.validate(spec),
                                  publish=True, note="v1")
    dataset = Dataset.objects.create(project=project, name=name, kind=Kind.POINTWISE,
                                     item_count=n)
    items = Item.objects.bulk_create(
        Item(dataset=dataset, external_id=f"i{k}", position=k,
             prompt=prompts(k) if prompts else f"Question {k}?",
             response=texts(k) if texts else f"Answer number {k}.")
        for k in range(n))
    return World(project, version, dataset, items, spec)


def length_spec(threshold: int = 10, slug: str = "len") -> dict:
    """A rubric whose anchors state a word threshold: the scripted fake model applies it."""
    return {"rubric": slug, "name": "Length", "mode": "pointwise",
            "description": "Answers to questions; long enough answers are better.",
            "criteria": [{"key": "long", "name": "Long enough", "weight": 1, "scale": {
                "type": "binary", "levels": [
                    {"value": 0, "anchor": "The answer is too short."},
                    {"value": 1, "anchor": f"The answer has at least {threshold} words."}]}}]}


def words_of(k: int) -> int:
    return (k * 37) % 80 + 1


def length_world(project, *, n: int = 100, judge_threshold: int = 10,
                 human_threshold: int = 40, name: str = "answers") -> World:
    """Items of 1..80 words; two annotators label "long" by `human_threshold` words, while the
    rubric's anchor says `judge_threshold`: the judge disagrees on the items in between."""
    world = make_world(project, n=n, spec=length_spec(judge_threshold),
                       texts=lambda k: " ".join(["word"] * words_of(k)),
                       prompts=lambda k: f"Question number {k} about eggs?", name=name)
    world.labels([(k, "long", who, int(words_of(k) >= human_threshold))
                  for k in range(n) for who in ("ann1", "ann2")])
    return world
