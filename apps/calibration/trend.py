"""Kappa across rubric versions for one judge name: did the revisions help?"""

from __future__ import annotations

from apps.calibration import stats
from apps.calibration.data import attach_judge, load_criteria
from apps.calibration.report import weighting_for
from apps.judging.models import FINISHED_STATUSES, JudgeRun
from apps.rubrics import scales


def kappa_trend(*, rubric, dataset, judge_name: str, current=None,
                items: set[int] | None = None) -> list[dict]:
    """One row per version that has a finished run of this judge on this dataset: the point
    kappa of each criterion against the human reference (no interval: a quick look), on
    `items` (the development items; None: all).

    `current` = (run, data) already loaded for the page (on those items), reused for that
    run's version."""
    runs = (JudgeRun.objects.filter(rubric_version__rubric=rubric, dataset=dataset,
                                    name=judge_name, status__in=FINISHED_STATUSES)
            .select_related("rubric_version").order_by("rubric_version__number", "-created_at"))
    latest: dict[int, JudgeRun] = {}
    for run in runs:
        latest.setdefault(run.rubric_version.number, run)
    rows = []
    for number, run in sorted(latest.items()):
        if current is not None and current[0].pk == run.pk:
            data = current[1]
        else:
            data = load_criteria(run.rubric_version, dataset,
                                 rule=current[1][0].rule if current and current[1] else "majority")
            attach_judge(data, run)
            if items is not None:
                data = [d.restricted(items) for d in data]
        kappas = {}
        for d in data:
            ref = d.reference()
            items = [i for i in ref if i in d.judge]
            if not items:
                kappas[d.key] = None
                continue
            value = stats.cohen_kappa([ref[i] for i in items], [d.judge[i] for i in items],
                                      labels=scales.allowed_values(d.scale),
                                      weights=weighting_for(d.scale))
            kappas[d.key] = None if value != value else round(float(value), 3)
        rows.append({"version": number, "run": run.pk, "kappas": kappas})
    return rows
