"""Suggest a better rubric from the labels, honestly (docs/decisions/0014, "The optimizer").

Life of a job (a Celery task, apps/calibration/tasks.py):
1. At the start: the draft's content, the development items with a human reference (never a
   test item: checked, and only those items' texts are ever read), and a call budget computed
   from rounds x items x criteria, shown to the user before they start.
2. The draft is scored on those items: the baseline (from the call cache where it was scored
   before).
3. Each round makes two proposals from the best content so far: (a) the judge model rewrites
   each disagreeing criterion's question and anchors, given the disagreeing items, the people's
   comments and its own rationales, and says what it changed and why; (b) few-shot examples
   picked from the disagreements (strongest first, one per reference value in turn, distinct
   texts). Each is re-scored on the same items and kept only if its weighted mean kappa beats
   the best so far.
4. The best kept proposal is offered; the user applies it to the draft, publishes it, and
   checks it on the test split like any version. Its development gain was measured on the items
   it was tuned on, and the page says so.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict

from celery.exceptions import SoftTimeLimitExceeded
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.calibration import stats
from apps.calibration.data import CriterionData, load_criteria
from apps.calibration.models import OPTIMIZER_ACTIVE, OptimizerJob, OptimizerStatus, Proposal
from apps.calibration.report import weighting_for
from apps.calibration.rescore import active_rescore, draft_on_development
from apps.calibration.scoring import (
    Budget,
    BudgetSpent,
    JudgeSettings,
    PermanentError,
    ask_once,
    calls_needed,
    score_content,
)
from apps.calibration.splits import ensure_split, example_leaks, item_content_hash
from apps.calibration.workbench import strength
from apps.datasets.models import Dataset, Item
from apps.judging.verdicts import ParseError, extract_object, storable
from apps.labeling.models import HumanLabel
from apps.rubrics import content as content_mod
from apps.rubrics import prompting, scales
from apps.rubrics.models import Rubric, RubricNote
from apps.rubrics.selectors import version_content
from apps.rubrics.services import rubric_draft, rubric_import

log = logging.getLogger(__name__)

MAX_ROUNDS = 5
SHOWN_DISAGREEMENTS = 12  # items shown to the model per rewrite
EXAMPLES_PER_CRITERION = 4
ITEM_TEXT_LIMIT = 4000  # characters of each text in a rewrite prompt
REWRITE_SYSTEM = (
    "You improve the rubric an LLM judge uses to grade responses. People labelled the examples "
    "below and the judge, following the current criterion, disagreed with them. Rewrite the "
    "criterion's question and the anchor of every level so that a judge following them would "
    "give the verdicts the people gave, and would still judge new responses sensibly. Keep the "
    "same levels. Do not mention the examples in the rubric.\n\n" + prompting.FENCE_NOTICE)


def budget_for(*, n_items: int, content: dict, rounds: int, samples: int) -> int:
    """The most calls a job may make: the baseline, then per round one rewrite call per
    weighted criterion and two full re-scores. The cache usually makes it far fewer."""
    per_score = calls_needed(content, n_items, JudgeSettings(model="", samples=samples))
    weighted = sum(1 for c in content["criteria"] if c["weight"] > 0)
    return per_score + rounds * (weighted + 2 * per_score)


def _settings(job: OptimizerJob) -> JudgeSettings:
    return JudgeSettings(model=job.model, api_base=job.api_base, temperature=job.temperature,
                         max_tokens=job.max_tokens, samples=job.samples,
                         concurrency=job.concurrency, timeout_s=job.timeout_s)


def optimizer_start(*, rubric: Rubric, dataset: Dataset, settings: JudgeSettings, rounds: int,
                    limit: int | None, user) -> OptimizerJob:
    """Freeze what the job starts from and its budget, then queue it on the workers."""
    from apps.calibration.tasks import run_optimizer

    if not 1 <= rounds <= MAX_ROUNDS:
        raise ValidationError({"rounds": f"From 1 to {MAX_ROUNDS} rounds."})
    if not dataset.texts_available:
        raise ValidationError(f"The texts of {dataset.name} are not distributed with it: there "
                              "is nothing to show the model.")
    if OptimizerJob.objects.filter(rubric=rubric, status__in=OPTIMIZER_ACTIVE).exists():
        raise ValidationError("An optimizer job is already running for this rubric.")
    with transaction.atomic():
        draft, content, view, item_ids = draft_on_development(rubric, dataset, user=user,
                                                              limit=limit)
        if not item_ids:
            raise ValidationError("No development item has a human reference: label first.")
        assert not set(item_ids) & view.test_ids  # rescore_items reads development items only
        budget = budget_for(n_items=len(item_ids), content=content, rounds=rounds,
                            samples=settings.samples)
        _check_spend(rubric, draft, dataset, item_ids, settings, budget)
        job = OptimizerJob.objects.create(
            rubric=rubric, dataset=dataset, version=draft, model=settings.model,
            api_base=settings.api_base, temperature=settings.temperature,
            max_tokens=settings.max_tokens, samples=settings.samples,
            concurrency=settings.concurrency, timeout_s=settings.timeout_s, rounds=rounds,
            budget_calls=budget,
            item_ids=item_ids, start_content=content,
            start_hash=content_mod.content_hash(content), created_by=user)
        run_optimizer.delay_on_commit(job.pk)
    return job


def _check_spend(rubric, draft, dataset, item_ids, settings: JudgeSettings, budget: int) -> None:
    """The project's monthly cost ceiling applies to the whole budget, priced like a judge
    run's calls (the optimizer's own spend is not stored as judgments: see ADR 0014)."""
    from apps.judging import planning, spend

    estimate = planning.estimate(
        version=draft, dataset=dataset, item_ids=item_ids,
        run_settings=planning.RunSettings(model=settings.model, api_base=settings.api_base,
                                          max_tokens=settings.max_tokens,
                                          samples=settings.samples))
    cost = None
    if estimate.cost_usd is not None and estimate.calls:
        cost = estimate.cost_usd / estimate.calls * budget
    over = spend.monthly_cost_error(rubric.project, estimate_usd=cost,
                                    api_base=settings.api_base)
    if over:
        raise ValidationError(over.replace("This run", "This optimizer job"))


# -- the job ---------------------------------------------------------------------------------

def _with_rule(data: list[CriterionData], view) -> list[CriterionData]:
    from apps.calibration.splits import set_rule

    if view is not None:
        set_rule(data, view.split.ordinal_reference)
    return data


def _kappas(content: dict, values: dict[str, dict[int, object]],
            references: dict[str, dict[int, object]]) -> dict[str, float | None]:
    out = {}
    for c in content["criteria"]:
        ref = references.get(c["key"], {})
        got = values.get(c["key"], {})
        items = sorted(i for i in ref if i in got)
        if not items:
            out[c["key"]] = None
            continue
        kappa = stats.cohen_kappa([ref[i] for i in items], [got[i] for i in items],
                                  labels=scales.allowed_values(c["scale"]),
                                  weights=weighting_for(c["scale"]))
        out[c["key"]] = None if math.isnan(kappa) else round(float(kappa), 6)
    return out


def weighted_score(content: dict, kappas: dict) -> float | None:
    """Weighted mean kappa over weighted criteria; an undefined kappa counts as -1 (worst)."""
    weighted = [c for c in content["criteria"] if c["weight"] > 0]
    total = sum(c["weight"] for c in weighted)
    if not total:
        return None
    return sum(c["weight"] * (kappas.get(c["key"]) if kappas.get(c["key"]) is not None else -1.0)
               for c in weighted) / total


def _disagreements(values, references, key) -> list[int]:
    ref, got = references.get(key, {}), values.get(key, {})
    return [i for i in sorted(ref) if i in got and got[i] != ref[i]]


def rewrite_messages(*, content: dict, criterion: dict, shown: list[dict]) -> list[dict]:
    """The rewrite request: the criterion as the judge sees it (without its examples), and the
    disagreeing development items fenced like any item text."""
    plain = {k: v for k, v in criterion.items() if k != "examples"}
    lines = ["Task of the rubric:", content["description"] or "(none)", "",
             "Current criterion:", prompting.render_criterion(plain), "",
             "Items where the judge and the people disagree:"]
    for number, row in enumerate(shown, 1):
        lines.append(f"Example {number}: people said {json.dumps(row['people'])}; the judge said "
                     f"{json.dumps(row['judge'])}.")
        for name in prompting.ITEM_FIELDS:
            if row["fields"].get(name):
                lines.append(prompting.fence(f"example_{name}",
                                             row["fields"][name][:ITEM_TEXT_LIMIT]))
        if row["comments"]:
            lines.append(prompting.fence("example_comments", "\n".join(row["comments"])[:2000]))
        if row["rationale"]:
            lines.append(prompting.fence("example_rationale", row["rationale"][:1000]))
    values = scales.allowed_values(criterion["scale"])
    lines += ["", "Reply with the revised criterion as JSON and nothing else: "
              '{"description": "<the question the criterion asks>", "anchors": {'
              + ", ".join(f'"{v}": "<anchor>"' for v in values)
              + '}, "why": "<what you changed and why, in two sentences>"}']
    return [{"role": "system", "content": REWRITE_SYSTEM},
            {"role": "user", "content": "\n".join(lines)}]


def parse_rewrite(text: str, criterion: dict) -> tuple[dict, str]:
    """The revised criterion from the model's answer, or ValueError saying why not. Model
    output is data: any shape, any size, any character ends here as a value or a reason."""
    try:
        data = extract_object(text[:50_000])
    except ParseError as exc:
        raise ValueError(f"not a JSON object ({exc})") from None
    anchors, description, why = data.get("anchors"), data.get("description"), data.get("why")
    if not isinstance(anchors, dict):
        raise ValueError('no "anchors" mapping')
    if not isinstance(description, str) or not isinstance(why, str) or not why.strip():
        raise ValueError('"description" and "why" must be text')
    levels = [dict(level) for level in criterion["scale"]["levels"]]
    for level in levels:
        anchor = anchors.get(str(level["value"]))
        if not isinstance(anchor, str) or not anchor.strip():
            raise ValueError(f"no anchor for level {level['value']}")
        # NUL and lone surrogates become U+FFFD: storable in any database, shown as text.
        level["anchor"] = storable(anchor.strip()[:2000])
    revised = dict(criterion, description=storable(description.strip()[:4000]),
                   scale={"type": criterion["scale"]["type"], "levels": levels})
    return revised, storable(why.strip()[:2000])


def pick_examples(*, criterion: dict, candidates: list[tuple[float, int]],
                  references: dict[int, object], texts: dict[int, dict],
                  forbidden: set[str]) -> list[dict]:
    """Few-shot examples from disagreements: strongest first within each reference value,
    values taken in turn (label balance), no two with the same text (diversity), never a text
    of the test split."""
    by_value: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for score, item in sorted(candidates, key=lambda c: (-c[0], c[1])):
        by_value[json.dumps(references[item])].append((score, item))
    chosen, seen = [], set()
    queues = [by_value[k] for k in sorted(by_value)]
    while queues and len(chosen) < EXAMPLES_PER_CRITERION:
        for queue in list(queues):
            if not queue:
                queues.remove(queue)
                continue
            _, item = queue.pop(0)
            digest = item_content_hash(texts[item])
            if digest in seen or digest in forbidden:
                continue
            seen.add(digest)
            fields = {k: v for k, v in texts[item].items() if v}
            chosen.append({**fields, "value": references[item], "source": f"item #{item}"})
            if len(chosen) >= EXAMPLES_PER_CRITERION:
                break
    return chosen


def _beat(job: OptimizerJob, budget: Budget) -> None:
    OptimizerJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now(),
                                                  calls_used=budget.used)
    status = OptimizerJob.objects.filter(pk=job.pk).values_list("status", flat=True).first()
    if status == OptimizerStatus.CANCELLED:
        raise _Cancelled


class _Cancelled(Exception):
    pass


def optimizer_run(job: OptimizerJob) -> str:
    """The job itself (called by the Celery task). Returns its final status."""
    claimed = OptimizerJob.objects.filter(pk=job.pk, status=OptimizerStatus.QUEUED).update(
        status=OptimizerStatus.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now())
    if not claimed:
        return "not queued"
    job.refresh_from_db()
    budget = Budget(total=job.budget_calls)
    try:
        status = _optimize(job, budget)
    except _Cancelled:
        status = OptimizerStatus.CANCELLED
    except BudgetSpent:
        status = OptimizerStatus.BUDGET
    except PermanentError as exc:
        job.error_message = str(exc)[:4000]
        status = OptimizerStatus.FAILED
    except SoftTimeLimitExceeded:
        job.error_message = ("stopped at the worker's time limit (CELERY_TASK_SOFT_TIME_LIMIT): "
                             "choose fewer rounds or items")
        status = OptimizerStatus.FAILED
    except Exception as exc:  # a job must end in a state that says so, never "running"
        log.exception("optimizer job %s failed", job.pk)
        job.error_message = f"internal error: {type(exc).__name__}"
        status = OptimizerStatus.FAILED
    OptimizerJob.objects.filter(pk=job.pk).exclude(status=OptimizerStatus.CANCELLED).update(
        status=status, calls_used=budget.used, finished_at=timezone.now(),
        error_message=job.error_message, baseline=job.baseline)
    OptimizerJob.objects.filter(pk=job.pk, finished_at__isnull=True).update(
        finished_at=timezone.now(), calls_used=budget.used)
    return status


def _optimize(job: OptimizerJob, budget: Budget) -> str:
    settings = _settings(job)
    content = job.start_content
    data = load_criteria(job.version, job.dataset)
    view = ensure_split(version=job.version, dataset=job.dataset, data=data)
    _with_rule(data, view)
    dev = set(job.item_ids)
    if view is None or dev & view.test_ids or not dev <= view.dev_ids:
        raise PermanentError("the job's items are not all development items")
    references = {d.key: {i: v for i, v in d.reference().items() if i in dev} for d in data}
    texts = {pk: item.fields() for pk, item in Item.objects.in_bulk(sorted(dev)).items()}
    comments = defaultdict(list)
    for item_id, key, who, text in HumanLabel.objects.filter(
            item_id__in=sorted(dev)).exclude(comment="").values_list(
            "item_id", "criterion_key", "annotator", "comment"):
        comments[(item_id, key)].append(f"{who}: {text}")
    forbidden = view.test_hashes

    scored = score_content(content, texts, settings, budget)
    _beat(job, budget)
    job.baseline = _kappas(content, scored.values, references)
    OptimizerJob.objects.filter(pk=job.pk).update(baseline=job.baseline)
    best_content, best_scored = content, scored
    best = weighted_score(content, job.baseline)
    improved = False
    for round_number in range(1, job.rounds + 1):
        for kind in ("rewrite", "examples"):
            proposal = Proposal(job=job, round=round_number, kind=kind, best_before=best)
            try:
                candidate, note = (_rewrite(job, best_content, best_scored, references, texts,
                                            comments, settings, budget)
                                   if kind == "rewrite" else
                                   _examples(best_content, best_scored, references, texts,
                                             forbidden))
            except ValueError as exc:
                proposal.error = str(exc)[:2000]
                proposal.save()
                _beat(job, budget)
                continue
            try:
                candidate = content_mod.validate(candidate)
            except content_mod.ContentError as exc:
                proposal.error = ("the proposal is not a valid rubric: "
                                  + "; ".join(exc.errors))[:2000]
                proposal.save()
                continue
            if example_leaks(candidate, view):
                proposal.error = "an example carried the text of a test item"
                proposal.save()
                continue
            result = score_content(candidate, texts, settings, budget)
            kappas = _kappas(candidate, result.values, references)
            score = weighted_score(candidate, kappas)
            proposal.content = candidate
            proposal.content_hash = content_mod.content_hash(candidate)
            proposal.note = note
            proposal.scores = kappas
            proposal.score = score
            proposal.kept = score is not None and (best is None or score > best + 1e-9)
            proposal.save()
            _beat(job, budget)
            if proposal.kept:
                best_content, best_scored, best, improved = candidate, result, score, True
    return OptimizerStatus.IMPROVED if improved else OptimizerStatus.NO_GAIN


def _rewrite(job, content, scored, references, texts, comments, settings, budget):
    revised = json.loads(json.dumps(content))
    notes = []
    for position, criterion in enumerate(content["criteria"]):
        if criterion["weight"] <= 0:
            continue
        missed = _disagreements(scored.values, references, criterion["key"])
        if not missed:
            continue
        step = max(1, len(missed) // SHOWN_DISAGREEMENTS)
        shown = [{"people": references[criterion["key"]][i],
                  "judge": scored.values[criterion["key"]][i], "fields": texts[i],
                  "comments": comments.get((i, criterion["key"]), []),
                  "rationale": scored.rationales.get((i, criterion["key"]), "")}
                 for i in missed[::step][:SHOWN_DISAGREEMENTS]]
        messages = rewrite_messages(content=content, criterion=criterion, shown=shown)
        new, why = parse_rewrite(ask_once(messages, settings, budget), criterion)
        revised["criteria"][position] = new
        notes.append(f"{criterion['name']}: {why}")
    if not notes:
        raise ValueError("no weighted criterion has a disagreement left to rewrite")
    return revised, "\n".join(notes)


def _examples(content, scored, references, texts, forbidden):
    revised = json.loads(json.dumps(content))
    notes = []
    for criterion in revised["criteria"]:
        if criterion["weight"] <= 0:
            continue
        key = criterion["key"]
        missed = _disagreements(scored.values, references, key)
        if not missed:
            continue
        candidates = [(strength(criterion["scale"], references[key][i], scored.values[key][i],
                                None), i) for i in missed]
        picked = pick_examples(criterion=criterion, candidates=candidates,
                               references=references[key], texts=texts, forbidden=forbidden)
        if not picked:
            continue
        existing = criterion.get("examples") or []
        room = content_mod.MAX_EXAMPLES - len(existing)
        picked = picked[:max(0, room)]
        if not picked:
            continue
        criterion["examples"] = existing + picked
        notes.append(f"{criterion['name']}: {len(picked)} few-shot example(s) from items the "
                     "judge got wrong, one reference value after another.")
    if not notes:
        raise ValueError("no criterion had disagreements to take examples from")
    return revised, "\n".join(notes)


# -- after the job ---------------------------------------------------------------------------

def best_proposal(job: OptimizerJob) -> Proposal | None:
    return job.proposals.filter(kept=True).order_by("-score", "id").first()


def proposal_apply(*, proposal: Proposal, user) -> None:
    """Make a kept proposal the rubric's draft, and keep its "what changed and why" as a note
    for the publish step. Refused when the draft changed since the job started (that would
    overwrite someone's edits) or while a re-score runs."""
    job = proposal.job
    rubric = job.rubric
    if not proposal.kept or proposal.content is None:
        raise ValidationError("Only a proposal that beat the draft on development items can be "
                              "applied.")
    if active_rescore(rubric) is not None:
        raise ValidationError("A re-score of the draft is running: wait for it first.")
    with transaction.atomic():
        draft = rubric_draft(rubric=rubric)
        try:
            now = content_mod.content_hash(content_mod.validate(version_content(draft)))
        except content_mod.ContentError:
            now = ""
        if now != job.start_hash:
            raise ValidationError("The draft has changed since the optimizer started: applying "
                                  "would overwrite those edits. Run the optimizer again.")
        content = dict(proposal.content, rubric=rubric.slug, name=rubric.name)
        rubric_import(project=rubric.project, content=content, user=user)
        RubricNote.objects.create(
            rubric=rubric, text=f"Optimizer proposal (round {proposal.round}, {proposal.kind}): "
                                f"{proposal.note}"[:4000],
            source=f"optimizer job #{job.pk}: development kappa {proposal.best_before:.3f} -> "
                   f"{proposal.score:.3f}, measured on the items it was tuned on"[:300],
            created_by=user)
        Proposal.objects.filter(pk=proposal.pk).update(applied_at=timezone.now())


def optimizer_cancel(job: OptimizerJob) -> bool:
    return bool(OptimizerJob.objects.filter(pk=job.pk, status__in=OPTIMIZER_ACTIVE).update(
        status=OptimizerStatus.CANCELLED, finished_at=timezone.now()))
