"""Re-scoring the draft on development items (the workbench's step 3 and 4): a judge run of the
draft through the same planning, batches, workers and call cache as any run, recorded with the
draft's content and hash as they were when it started, so it is evidence only for that text;
then agreement before and after, per criterion, and the items that flipped each way.
"""

from __future__ import annotations

import random

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.calibration import stats
from apps.calibration.data import CriterionData, attach_judge, load_criteria
from apps.calibration.models import Rescore
from apps.calibration.report import _num, weighting_for
from apps.calibration.splits import SplitView, ensure_split, example_leaks
from apps.datasets.models import Dataset, Item
from apps.judging.models import ACTIVE_STATUSES, JudgeRun, RunKind
from apps.judging.planning import RunSettings, Subset, judge_run_start
from apps.judging.progress import run_progress
from apps.rubrics import content as content_mod
from apps.rubrics import scales
from apps.rubrics.models import Rubric, RubricVersion
from apps.rubrics.selectors import version_content
from apps.rubrics.services import rubric_draft

RESCORE_LIMIT = 200  # development items a re-score judges by default (a seeded sample)


def active_rescore(rubric: Rubric) -> Rescore | None:
    return (Rescore.objects.filter(rubric=rubric, run__status__in=ACTIVE_STATUSES)
            .select_related("run").first())



def settings_from(run: JudgeRun) -> RunSettings | None:
    if run.kind != RunKind.LIVE or not run.model:
        return None
    return RunSettings(model=run.model, api_base=run.api_base, temperature=run.temperature,
                       max_tokens=run.max_tokens, samples=run.samples,
                       concurrency=run.concurrency, timeout_s=run.timeout_s, use_cache=True)


def rescore_items(view: SplitView | None, data: list[CriterionData], *,
                  limit: int | None) -> list[int]:
    """Development items with a human reference on some criterion; a seeded sample of
    `limit` of them (the same items every time, so before and after compare)."""
    if view is None:
        return []
    dev = view.dev_ids
    ids = sorted({i for d in data for i in d.reference() if i in dev})
    if limit is not None and len(ids) > limit:
        ids = sorted(random.Random(view.split.seed).sample(ids, limit))
    return ids


def rescore_start(*, rubric: Rubric, dataset: Dataset, base_run: JudgeRun,
                  run_settings: RunSettings, user, limit: int | None = RESCORE_LIMIT) -> Rescore:
    """Re-score the draft on development items: a judge run on the workers, recorded with the
    draft's content and hash as they are now."""
    if active_rescore(rubric) is not None:
        raise ValidationError("A re-score is already running for this rubric.")
    with transaction.atomic():
        draft, content, view, item_ids = draft_on_development(rubric, dataset, user=user,
                                                              limit=limit)
        if not item_ids:
            raise ValidationError("No development item has a human reference on the draft's "
                                  "criteria: label some items first.")
        previous = (Rescore.objects.filter(rubric=rubric, dataset=dataset,
                                           run__model=run_settings.model)
                    .exclude(run__status__in=ACTIVE_STATUSES).first())
        name = f"{base_run.name.removesuffix(' (workbench)')} (workbench)"[:120]
        run = judge_run_start(project=rubric.project, version=draft, dataset=dataset,
                              run_settings=run_settings, name=name, user=user,
                              subset=Subset(kind="items", item_ids=tuple(item_ids)),
                              allow_draft=True)
        return Rescore.objects.create(
            rubric=rubric, dataset=dataset, version=draft, run=run,
            base_run=base_run,
            previous=previous, content=content, content_hash=content_mod.content_hash(content),
            item_count=len(item_ids), created_by=user)


def draft_on_development(rubric: Rubric, dataset: Dataset, *, user, limit: int | None):
    """The rubric's draft (valid, its examples never a test item) and the development items a
    re-score or the optimizer may judge with it: (draft, content, split view, item ids). Called
    inside the caller's transaction (the split is drawn on first use)."""
    draft = rubric_draft(rubric=rubric)
    try:
        content = content_mod.validate(version_content(draft))
    except content_mod.ContentError as exc:
        raise ValidationError(["Fix the draft first:", *exc.errors]) from None
    data = load_criteria(draft, dataset)
    view = ensure_split(version=draft, dataset=dataset, data=data, user=user)
    leaks = example_leaks(content, view)
    if leaks:
        raise ValidationError(["Examples must not show the judge test items:", *leaks])
    return draft, content, view, rescore_items(view, data, limit=limit)


def rescore_state(rescore: Rescore) -> dict:
    """Is this re-score evidence for the draft as it is now?

    "current": the draft has not changed since the run started; "stale": it changed after the
    run ended (the figures hold for the text recorded here, not for today's draft); "mixed":
    it changed while the run was going, so its verdicts judged two texts and are not shown.
    """
    run = rescore.run
    version = RubricVersion.objects.filter(pk=rescore.version_id).first()
    state = {"run": run, "progress": run_progress(run), "evidence": "current", "sentence": ""}
    if version is None:
        state.update(evidence="stale", sentence="The draft it judged no longer exists.")
        return state
    changed_at = version.updated_at
    if changed_at > run.created_at:
        still = run.is_active
        during = still or (run.finished_at is not None and changed_at <= run.finished_at)
        try:
            now = content_mod.content_hash(content_mod.validate(version_content(version)))
        except content_mod.ContentError:
            now = ""
        if during:
            state.update(evidence="mixed", sentence=(
                "The draft changed while this re-score ran: its verdicts judged two texts and "
                "are not evidence for either. Re-score."))
        elif now != rescore.content_hash:
            state.update(evidence="stale", sentence=(
                f"The draft has changed since this re-score (it judged the text with hash "
                f"{rescore.content_hash[:12]}; the draft is now {now[:12] or 'invalid'}): "
                "these figures are for the earlier text. Re-score to see the current one."))
    return state


def _flips(before: dict, after: dict, ref: dict) -> tuple[list, list]:
    better, worse = [], []
    for item in sorted(set(before) & set(after) & set(ref)):
        was, now = before[item] == ref[item], after[item] == ref[item]
        if not was and now:
            better.append(item)
        elif was and not now:
            worse.append(item)
    return better, worse


def before_after(rescore: Rescore) -> dict:
    """Agreement before and after this re-score on the items it judged, per criterion, and
    the items that flipped each way. "Before" is the previous re-score, else the base judge."""
    before_run = rescore.previous.run if rescore.previous_id else rescore.base_run
    after_data = load_criteria(rescore.version, rescore.dataset)
    attach_judge(after_data, rescore.run)
    judged = {i for d in after_data for i in d.judge}
    out = {"before": before_run, "criteria": [], "flipped_better": [], "flipped_worse": []}
    before_by_key = {}
    if before_run is not None:
        before_data = load_criteria(before_run.rubric_version, rescore.dataset)
        attach_judge(before_data, before_run)
        before_by_key = {d.key: d for d in before_data}
    names = {}
    for d in after_data:
        ref = d.reference()
        b = before_by_key.get(d.key)
        comparable = b is not None and scales.scale_signature(b.scale) == scales.scale_signature(
            d.scale)
        items = sorted(i for i in judged if i in ref and i in d.judge
                       and (not comparable or i in b.judge))
        labels = scales.allowed_values(d.scale)
        weights = weighting_for(d.scale)

        def kappa(values, items=items, ref=ref, labels=labels, weights=weights):
            if not items:
                return None
            return _num(stats.cohen_kappa([ref[i] for i in items], [values[i] for i in items],
                                          labels=labels, weights=weights))

        def agreement(values, items=items, ref=ref):
            if not items:
                return None
            return _num(sum(1 for i in items if values[i] == ref[i]) / len(items))

        entry = {"key": d.key, "name": d.criterion["name"], "n": len(items),
                 "comparable": comparable, "after": kappa(d.judge),
                 "after_agreement": agreement(d.judge), "before": None,
                 "before_agreement": None, "delta": None, "better": [], "worse": []}
        if comparable:
            entry["before"] = kappa(b.judge)
            entry["before_agreement"] = agreement(b.judge)
            if entry["before"] is not None and entry["after"] is not None:
                entry["delta"] = _num(entry["after"] - entry["before"])
            restricted_before = {i: b.judge[i] for i in items}
            restricted_after = {i: d.judge[i] for i in items}
            better, worse = _flips(restricted_before, restricted_after, ref)
            entry["better"] = [(i, ref[i], b.judge[i], d.judge[i]) for i in better]
            entry["worse"] = [(i, ref[i], b.judge[i], d.judge[i]) for i in worse]
            names.update(dict.fromkeys(better + worse))
        out["criteria"].append(entry)
    external = dict(Item.objects.filter(pk__in=list(names)).values_list("pk", "external_id"))
    for entry in out["criteria"]:
        entry["better"] = [(external.get(i, i), *rest) for i, *rest in entry["better"]]
        entry["worse"] = [(external.get(i, i), *rest) for i, *rest in entry["worse"]]
    return out


def rescore_cancel(rescore: Rescore) -> bool:
    from apps.judging.planning import judge_run_cancel

    return judge_run_cancel(run=rescore.run)


def latest_rescore(rubric: Rubric, dataset: Dataset) -> Rescore | None:
    return (Rescore.objects.filter(rubric=rubric, dataset=dataset)
            .select_related("run", "previous__run", "base_run").first())

