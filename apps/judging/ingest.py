"""Verdicts of external judges that ride along with dataset rows. Called by apps/intake.

Each judge name becomes one imported JudgeRun for (dataset, rubric version). A verdict that is a
mean over K samples keeps the mean and uses the nearest level as its value.
"""

from __future__ import annotations

import math

from apps.datasets.models import Dataset
from apps.datasets.rows import RowProblem
from apps.judging.models import JudgeRun, RunKind, RunStatus, Verdict
from apps.rubrics import scales
from apps.rubrics.models import RubricVersion

FLAGS = ("", "unparseable", "inconsistent")


def _nearest_level(scale: dict, mean: float):
    values = scales.allowed_values(scale)
    # Halves round up, so 2.5 reads as 3: the same rule the live runs use for ordinal means.
    return min(values, key=lambda v: (abs(v - mean), -v))


def clean_judgments(raw, *, criteria: dict[str, dict], line: int) -> tuple[list[dict], list]:
    problems: list[RowProblem] = []
    if raw in (None, ""):
        return [], problems
    if not isinstance(raw, list):
        return [], [RowProblem(line, "judgments", "must be a list of {judge, criterion, value}")]
    verdicts: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for i, verdict in enumerate(raw):
        field = f"judgments[{i}]"
        if not isinstance(verdict, dict):
            problems.append(RowProblem(line, field, "must be an object"))
            continue
        judge = verdict.get("judge")
        if not isinstance(judge, str) or not judge.strip():
            problems.append(RowProblem(line, f"{field}.judge", "missing"))
            continue
        judge = judge.strip()[:120]
        key = verdict.get("criterion")
        criterion = criteria.get(key) if isinstance(key, str) else None
        if criterion is None:
            known = ", ".join(criteria) or "(none)"
            problems.append(
                RowProblem(line, f"{field}.criterion", f"unknown criterion {key!r}; known: {known}")
            )
            continue
        scale = criterion["scale"]
        mean = verdict.get("mean")
        if mean is not None:
            values = scales.allowed_values(scale)
            if (
                not isinstance(mean, int | float)
                or isinstance(mean, bool)
                or not scales.is_numeric(scale)
                or math.isnan(mean)
                or not min(values) <= mean <= max(values)
            ):
                problems.append(
                    RowProblem(line, f"{field}.mean", "a number within the scale (numeric scales)")
                )
                continue
            mean = float(mean)
        if "value" in verdict:
            try:
                value = scales.coerce_value(scale, verdict["value"])
            except ValueError as exc:
                problems.append(RowProblem(line, f"{field}.value", str(exc)))
                continue
        elif mean is not None:
            value = _nearest_level(scale, mean)
        else:
            problems.append(RowProblem(line, f"{field}.value", "missing (give value or mean)"))
            continue
        samples = verdict.get("samples", 1)
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
            problems.append(RowProblem(line, f"{field}.samples", "a whole number >= 1"))
            continue
        flag = verdict.get("flag") or ""
        if flag not in FLAGS:
            problems.append(RowProblem(line, f"{field}.flag", f"one of {', '.join(FLAGS[1:])}"))
            continue
        rationale = verdict.get("rationale") or ""
        if (judge, key) in seen:
            problems.append(RowProblem(line, field, f"a second verdict by {judge!r} for {key!r}"))
            continue
        seen.add((judge, key))
        verdicts.append(
            {
                "judge": judge,
                "criterion_key": key,
                "value": scales.value_to_text(value),
                "mean": mean,
                "n_samples": samples,
                "rationale": rationale if isinstance(rationale, str) else str(rationale),
                "flag": flag,
            }
        )
    return verdicts, problems


class ImportedRuns:
    """Finds or creates the imported run of each judge name, once per import."""

    def __init__(self, *, dataset: Dataset, version: RubricVersion, user=None) -> None:
        self.dataset = dataset
        self.version = version
        self.user = user
        self._runs: dict[str, JudgeRun] = {}

    def get(self, name: str, samples: int) -> JudgeRun:
        run = self._runs.get(name)
        if run is None:
            run = JudgeRun.objects.filter(
                dataset=self.dataset, rubric_version=self.version, name=name, kind=RunKind.IMPORTED
            ).first() or JudgeRun.objects.create(
                project=self.dataset.project, dataset=self.dataset, rubric_version=self.version,
                name=name, kind=RunKind.IMPORTED, status=RunStatus.COMPLETED, samples=samples,
                created_by=self.user,
            )
            self._runs[name] = run
        return run

    @property
    def runs(self) -> list[JudgeRun]:
        return list(self._runs.values())


def verdicts_insert(pairs: list[tuple[int, list[dict]]], *, runs: ImportedRuns) -> int:
    """Insert the verdicts of a batch: pairs of (item id, cleaned verdicts)."""
    objects = []
    for item_id, verdicts in pairs:
        for v in verdicts:
            run = runs.get(v["judge"], v["n_samples"])
            objects.append(
                Verdict(
                    run=run, item_id=item_id, criterion_key=v["criterion_key"], value=v["value"],
                    mean=v["mean"], n_samples=v["n_samples"], rationale=v["rationale"],
                    flag=v["flag"],
                )
            )
    Verdict.objects.bulk_create(objects, batch_size=2000)
    return len(objects)
