"""The demo project, built from the real data in demo_data/ through the same importer a user
uses (rows in the DESIGN.md format, one transaction per dataset).
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from apps.datasets.models import Dataset
from apps.intake.services import ImportResult, dataset_file_import
from apps.projects.models import Membership, Project, Role
from apps.rubrics import content as content_mod
from apps.rubrics.models import Rubric
from apps.rubrics.services import rubric_import

DATA_DIR = Path(settings.BASE_DIR) / "demo_data"
PROJECT_SLUG = "demo"
PANDALM_DATASET = "PandaLM test set"
HANNA_DATASET = "HANNA story ratings"
PANDALM_VALUE = {0: "tie", 1: "A", 2: "B", "0": "tie", "1": "A", "2": "B", "Tie": "tie"}
HANNA_CRITERIA = {
    "Relevance": ("relevance", "How well does the story match its prompt?"),
    "Coherence": ("coherence", "How much does the story make sense?"),
    "Empathy": ("empathy", "How well does the reader understand the characters' emotions?"),
    "Surprise": ("surprise", "How surprising is the end of the story?"),
    "Engagement": ("engagement", "How much does the reader engage with the story?"),
    "Complexity": ("complexity", "How elaborate is the story?"),
}
HANNA_JUDGES = ("Beluga-13B", "Llama-13B", "Mistral-7B", "ChatGPT")
HANNA_PROMPTS = (1, 2, 3, 4)

PANDALM_RUBRIC = {
    "rubric": "pandalm-preference",
    "name": "PandaLM preference",
    "mode": "pairwise",
    "description": (
        "Two instruction-tuned models answered the same instruction. Decide which response "
        "follows the instruction better: correct, relevant, complete, concise and clear."
    ),
    "pass_threshold": 0.5,
    "criteria": [
        {
            "key": "overall",
            "name": "Overall preference",
            "description": (
                "Which response better fulfils the instruction as a whole? Prefer the correct "
                "and relevant response; between equally correct ones, the more concise and "
                "clear. Choose tie when neither is clearly better."
            ),
            "weight": 1,
            "scale": {
                "type": "pairwise",
                "levels": [
                    {"value": "A", "label": "A is better",
                     "anchor": "Response A follows the instruction clearly better."},
                    {"value": "B", "label": "B is better",
                     "anchor": "Response B follows the instruction clearly better."},
                    {"value": "tie", "label": "Tie",
                     "anchor": "Both are about equally good, or equally bad."},
                ],
            },
        }
    ],
}


def _hanna_levels(question: str) -> list[dict]:
    words = ["not at all", "slightly", "moderately", "mostly", "completely"]
    return [
        {"value": i + 1, "label": word.capitalize(),
         "anchor": f"{question.rstrip('?')}: {word}."}
        for i, word in enumerate(words)
    ]


HANNA_RUBRIC = {
    "rubric": "hanna-stories",
    "name": "HANNA story quality",
    "mode": "pointwise",
    "description": (
        "A short story was written from a writing prompt. Rate the story on six criteria from "
        "the HANNA benchmark (Chhun et al., 2022), each on a 1-5 scale."
    ),
    "pass_threshold": 0.5,
    "criteria": [
        {"key": key, "name": name, "description": question, "weight": 1,
         "scale": {"type": "ordinal", "levels": _hanna_levels(question)}}
        for name, (key, question) in HANNA_CRITERIA.items()
    ],
}


@dataclass
class DemoResult:
    project: Project
    created: list[str]
    skipped: list[str]
    login: tuple[str, str] | None


def _text(value) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def pandalm_rows(data_dir: Path = DATA_DIR) -> Iterator[dict]:
    folder = data_dir / "pandalm"
    items = json.loads((folder / "testset-v1.json").read_text(encoding="utf-8"))
    gpt = json.loads((folder / "gpt-3.5-turbo-testset-v1.json").read_text(encoding="utf-8"))
    panda = json.loads((folder / "pandalm-7b-testset-v1.json").read_text(encoding="utf-8"))
    for item, g, p in zip(items, gpt, panda, strict=True):
        if not item["idx"] == g["idx"] == p["idx"]:
            raise ValueError(f"PandaLM files are not aligned at idx {item['idx']}")
        prompt = item["instruction"]
        if item.get("input"):
            prompt += "\n\n" + item["input"]
        gpt_raw = g["gpt_result"]
        gpt_verdict = {
            "judge": "gpt-3.5-turbo", "criterion": "overall",
            "value": PANDALM_VALUE.get(gpt_raw, "tie"), "rationale": g.get("gpt_reason") or "",
        }
        if gpt_raw not in PANDALM_VALUE:
            gpt_verdict["flag"] = "unparseable"  # "garbage": counted as tie, as in the paper
        model_a, _, model_b = item["cmp_key"].partition("_")
        yield {
            "id": str(item["idx"]),
            "prompt": prompt,
            # Four responses are JSON booleans upstream (a model answered "True"): keep as text.
            "response_a": _text(item["response1"]),
            "response_b": _text(item["response2"]),
            "metadata": {"motivation_app": item["motivation_app"], "cmp_key": item["cmp_key"],
                         "model_a": model_a, "model_b": model_b},
            "labels": [
                {"annotator": f"annotator{n}", "criterion": "overall",
                 "value": PANDALM_VALUE[item[f"annotator{n}"]]}
                for n in (1, 2, 3)
            ],
            "judgments": [
                gpt_verdict,
                {"judge": "PandaLM-7B", "criterion": "overall",
                 "value": PANDALM_VALUE[p["pandalm_result"]],
                 "rationale": p.get("pandalm_reason") or ""},
            ],
        }


def hanna_rows(data_dir: Path = DATA_DIR, stats: dict | None = None) -> Iterator[dict]:
    """One row per story; a mean outside 1..5 holds a failed sample (-1) and is left out."""
    stats = stats if stats is not None else {}
    stories: dict[str, dict] = {}
    with (data_dir / "hanna" / "ratings_long.csv").open(encoding="utf-8", newline="") as fh:
        for rec in csv.DictReader(fh):
            story = stories.setdefault(rec["story_id"], {
                "id": rec["story_id"], "prompt": "", "response": "",
                "metadata": {"system": rec["system"], "story_id": int(rec["story_id"])},
                "labels": [], "judgments": [],
            })
            key = HANNA_CRITERIA[rec["criterion"]][0]
            for n in (1, 2, 3):
                story["labels"].append(
                    {"annotator": f"human{n}", "criterion": key, "value": int(rec[f"human{n}"])}
                )
            for judge in HANNA_JUDGES:
                for prompt in HANNA_PROMPTS:
                    mean = float(rec[f"{judge}_prompt{prompt}"])
                    if math.isnan(mean) or not 1 <= mean <= 5:
                        stats["skipped"] = stats.get("skipped", 0) + 1
                        continue
                    story["judgments"].append({
                        "judge": f"{judge} (prompt {prompt})", "criterion": key,
                        "mean": round(mean, 6), "samples": 3,
                    })
    yield from stories.values()


def _import_rows(project, name, rows, description, **kw) -> ImportResult:
    with tempfile.TemporaryFile() as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
        fh.seek(0)
        return dataset_file_import(
            project=project, dataset_name=name, stream=fh, fmt="jsonl",
            description=description, **kw,
        )


def load_demo(*, login: tuple[str, str] | None = ("demo", "demo")) -> DemoResult:
    """Create the demo project (idempotent: what exists already is left as it is)."""
    created: list[str] = []
    skipped: list[str] = []
    with transaction.atomic():
        project, new = Project.objects.get_or_create(
            slug=PROJECT_SLUG,
            defaults={
                "name": "Demo: PandaLM and HANNA",
                "description": (
                    "Real human labels and real judge verdicts: PandaLM (pairwise, 999 items, 3 "
                    "annotators, gpt-3.5-turbo and PandaLM-7B) and HANNA (6 criteria, 1-5, "
                    "3 raters, 4 LLMs under 4 prompts)."
                ),
                "is_demo": True,
            },
        )
        if not new and not project.is_demo:
            raise RuntimeError(
                f"a project with slug '{PROJECT_SLUG}' exists and is not the demo; "
                "rename it (its slug) to load the demo"
            )
        (created if new else skipped).append("project")
        for spec in (PANDALM_RUBRIC, HANNA_RUBRIC):
            # A rubric that exists is left alone: users edit the demo rubrics, and loading the
            # demo again must neither overwrite their draft nor publish a version over theirs.
            if Rubric.objects.filter(project=project, slug=spec["rubric"]).exists():
                skipped.append(f"rubric {spec['rubric']}")
                continue
            rubric_import(
                project=project, content=content_mod.validate(spec), publish=True,
                note="Demo rubric, written from the data set's paper.",
            )
            created.append(f"rubric {spec['rubric']}")
    if not Dataset.objects.filter(project=project, name=PANDALM_DATASET).exists():
        result = _import_rows(
            project, PANDALM_DATASET, pandalm_rows(),
            "PandaLM test set (Wang et al., ICLR 2024): 999 instruction-following comparisons "
            "with three human annotators and the recorded verdicts of gpt-3.5-turbo and "
            "PandaLM-7B. Apache-2.0. See demo_data/README.md.",
            rubric_slug=PANDALM_RUBRIC["rubric"],
        )
        _raise_on_problems(result)
        created.append(f"dataset {PANDALM_DATASET} ({result.summary()})")
    else:
        skipped.append(f"dataset {PANDALM_DATASET}")
    if not Dataset.objects.filter(project=project, name=HANNA_DATASET).exists():
        stats: dict = {}
        rows = list(hanna_rows(stats=stats))
        # One transaction with the flag below: a HANNA dataset that claims to carry texts would
        # otherwise survive a crash in between, and a second load_demo would skip it.
        with transaction.atomic():
            result = _import_rows(
                project, HANNA_DATASET, rows,
                "HANNA (Chhun et al., COLING 2022): 1,056 stories rated 1-5 on six criteria by "
                "three humans, and by Beluga-13B, Llama-13B, Mistral-7B and ChatGPT under four "
                "prompts (each rating a mean of 3 samples). Ratings only: the story texts are "
                f"not distributed with this file. {stats.get('skipped', 0)} LLM means outside "
                "1-5 (they contain a failed sample) were not imported. MIT licence.",
                rubric_slug=HANNA_RUBRIC["rubric"],
            )
            _raise_on_problems(result)
            Dataset.objects.filter(pk=result.dataset.pk).update(texts_available=False)
            _hanna_split(project, result.dataset)
        created.append(f"dataset {HANNA_DATASET} ({result.summary()})")
    else:
        skipped.append(f"dataset {HANNA_DATASET}")
    credentials = None
    if login is not None:
        username, password = login
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_user(username=username, password=password)
            credentials = (username, password)
        Membership.objects.get_or_create(
            project=project, user=user, defaults={"role": Role.OWNER}
        )
    return DemoResult(project=project, created=created, skipped=skipped, login=credentials)


def _hanna_split(project, dataset) -> None:
    """HANNA's three raters often give three different levels (413 of 1,056 stories have no
    majority on relevance): the demo draws its split with the median of the annotators as the
    reference of its ordinal criteria, before anyone looks at test results."""
    from apps.calibration.data import load_criteria
    from apps.calibration.splits import ensure_split
    from apps.rubrics.selectors import latest_published

    version = latest_published(Rubric.objects.get(project=project, slug=HANNA_RUBRIC["rubric"]))
    ensure_split(version=version, dataset=dataset, data=load_criteria(version, dataset),
                 rule="median")


def _raise_on_problems(result: ImportResult) -> None:
    if not result.ok:
        problems = "; ".join(str(p) for p in result.problems[:5])
        raise RuntimeError(f"demo data did not import: {problems}")
