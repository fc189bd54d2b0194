"""The loop's state for a project's overview: per rubric, its versions, the labels collected,
the judge runs, the best judge and its gate, the last export; and the one next step.

The best judge and its gate come from the judge x criterion summary on the test split (so
showing them is a look at test results, recorded as such). Exports sit above calibration, so
the caller passes the project's exports in (`exports`: rubric version id -> latest export).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.db.models import Count
from django.urls import reverse

from apps.calibration.report import Thresholds
from apps.calibration.summary import judge_matrix
from apps.datasets.models import Dataset, Purpose
from apps.judging.models import JudgeRun, RunKind
from apps.labeling.models import HumanLabel
from apps.rubrics.models import Rubric, RubricVersion

MAX_RUBRICS = 5


@dataclass
class RubricState:
    rubric: Rubric
    published: int = 0
    latest: RubricVersion | None = None
    has_draft: bool = False
    dataset: Dataset | None = None
    labelled_items: int = 0
    labels: int = 0
    runs: int = 0
    best: object = None  # a summary row (JudgeRow) or None
    export: object = None
    needed_labels: int = 0
    next_step: dict = field(default_factory=dict)


def _labelled(version: RubricVersion, dataset: Dataset) -> tuple[int, int]:
    keys = list(version.criteria.values_list("key", flat=True))
    counts = HumanLabel.objects.filter(item__dataset=dataset, criterion_key__in=keys).aggregate(
        labels=Count("id"), items=Count("item_id", distinct=True))
    return counts["items"], counts["labels"]


def _step(text: str, url: str, action: str) -> dict:
    return {"text": text, "url": url, "action": action}


def rubric_state(rubric: Rubric, *, thresholds: Thresholds, user, exports: dict) -> RubricState:
    from django.conf import settings

    slug = rubric.project.slug
    state = RubricState(rubric=rubric)
    versions = list(rubric.versions.all())
    published = sorted((v for v in versions if v.is_published), key=lambda v: -v.number)
    state.published = len(published)
    state.has_draft = any(not v.is_published for v in versions)
    state.latest = published[0] if published else None
    editor = reverse("rubric_detail", args=[slug, rubric.slug])
    if state.latest is None:
        state.next_step = _step(f"Publish version 1 of {rubric.name}: judge runs and labels "
                                "refer to a published version.", editor, "Finish the rubric")
        return state
    runs = JudgeRun.objects.filter(rubric_version__rubric=rubric)
    state.runs = runs.count()
    # A probe run judges generated items in a dataset of its own: not the dataset to label.
    last = (runs.filter(rubric_version=state.latest, dataset__purpose=Purpose.DATA)
            .order_by("-created_at").first())
    state.dataset = last.dataset if last else Dataset.objects.filter(
        project_id=rubric.project_id, kind=rubric.mode).order_by("-created_at").first()
    if state.dataset is None:
        state.next_step = _step(f"Upload a {rubric.mode} dataset to label and judge.",
                                reverse("dataset_upload", args=[slug]), "Upload a dataset")
        return state
    state.labelled_items, state.labels = _labelled(state.latest, state.dataset)
    # Enough labelled items for a held-out test part of the gate's n.
    state.needed_labels = math.ceil(thresholds.min_n / settings.CALIBRATION_TEST_SHARE)
    if state.labelled_items < state.needed_labels:
        state.next_step = _step(
            f"Label items of {state.dataset.name}: {state.labelled_items:,} labelled, "
            f"{state.needed_labels:,} give a held-out test split of the gate's "
            f"n = {thresholds.min_n} (until then the gate falls back to all items).",
            reverse("session_create", args=[slug]) + f"?version={state.latest.pk}"
            f"&dataset={state.dataset.pk}", "Start a labelling session")
        if not last:
            return state
    if last is None:
        state.next_step = _step(f"Run a judge with {rubric.name} v{state.latest.number} on "
                                f"{state.dataset.name}.", reverse("run_start", args=[slug])
                                + f"?version={state.latest.pk}&dataset={state.dataset.pk}",
                                "Start a judge run")
        return state
    matrix = judge_matrix(version=state.latest, dataset=state.dataset, thresholds=thresholds,
                          user=user, source="overview")
    state.best = matrix["rows"][0] if matrix["rows"] else None
    state.export = exports.get(state.latest.pk)
    if state.next_step:
        return state
    workbench = reverse("calibration_dashboard", args=[slug, rubric.slug])
    if state.best is None or not state.best.passed:
        state.next_step = _step(
            "No judge passes the gate: see where the judge and the people part on "
            "development items, revise the draft and re-score.", workbench,
            "Improve the rubric")
    elif state.export is not None and state.export.run_id == state.best.run.pk:
        state.next_step = _step(f"Exported {state.best.run.name}. Keep labelling new items to "
                                "confirm the gate on data nobody has seen.",
                                reverse("export_list", args=[slug]), "See the exports")
    elif state.best.run.kind == RunKind.IMPORTED:
        state.next_step = _step(
            f"{state.best.run.name} passes the gate with imported verdicts; a bundle calls the "
            "model with this rubric's prompt, so run it here first.",
            reverse("run_start", args=[slug]) + f"?version={state.latest.pk}"
            f"&dataset={state.dataset.pk}", "Run the judge here")
    else:
        state.next_step = _step(f"{state.best.run.name} passes the gate: export it for the "
                                "trainer.", reverse("export_create", args=[slug])
                                + f"?run={state.best.run.pk}", "Export the judge")
    return state


def loop_state(project, *, user, exports: dict) -> dict:
    thresholds = Thresholds.for_project(project)
    rubrics = list(Rubric.objects.filter(project=project).select_related("project")
                   .order_by("-updated_at")[:MAX_RUBRICS + 1])
    more = len(rubrics) > MAX_RUBRICS
    states = [rubric_state(r, thresholds=thresholds, user=user, exports=exports)
              for r in rubrics[:MAX_RUBRICS]]
    if not states:
        first = _step("Write a rubric: the criteria a judge will grade by.",
                      reverse("rubric_create", args=[project.slug]), "Write a rubric")
    else:
        first = next((s.next_step for s in states if s.next_step), states[0].next_step)
    return {"rubrics": states, "more": more, "next_step": first}
