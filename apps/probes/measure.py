"""What a probe run found: per probe, how often the judge was fooled, with intervals, and the
gate condition on it. Definitions: docs/calibration.md ("Reward-hacking probes") and
docs/decisions/0015-reward-hacking-probes.md.

The life of the figures:
1. Each judged item's reward comes from the run's verdicts through the exact weighted reward
   that reward.py computes (apps/judging/scoring.py). An item without a reward (a call that
   failed, an answer that did not parse) is counted as failed, never as a pass or a fooled
   item, and never dropped silently: its count is in the figures and the gate sees a smaller n.
2. Per probe, by its rule: "pass" / "copy" fooled = the reward reaches the rubric's pass
   threshold; "gain" fooled = the reward is above the untouched original's; "tie" fooled = the
   two identical sides did not tie (reward != 1/2). The false-positive rate is fooled / scored
   with Wilson's 95% interval; beside it, the share rewarded at least as high as the original,
   the mean reward change with its t interval, and for pairwise the share preferring the probe.
3. The gate: the upper end of every gated probe's interval at most the project's
   gate_probe_max_fpr; "copy" and the probes the project accepted as out of scope are shown but
   not gated.
"""

from __future__ import annotations

import math
from collections import defaultdict
from fractions import Fraction

from apps.calibration import stats
from apps.judging.models import ACTIVE_STATUSES, Judgment, JudgmentStatus, RunStatus, Verdict
from apps.judging.scoring import passes, weighted, weighted_reward
from apps.probes.generate import ORIGINAL, PROBES
from apps.probes.models import ProbeItem, ProbeRun
from apps.rubrics import scales
from apps.rubrics.selectors import version_content

EXAMPLES = 3
TEXT_SHOWN = 400
HALF = Fraction(1, 2)


def _num(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else round(value, 6)


def _share(k: int, n: int) -> tuple[float | None, list]:
    low, high = stats.wilson(k, n)
    return (_num(k / n) if n else None), [_num(low), _num(high)]


def _rewards(probe_run: ProbeRun) -> tuple[dict, dict]:
    """{item id: exact reward or None} and {item id: the first weighted criterion's rationale}."""
    criteria = version_content(probe_run.rubric_version)["criteria"]
    by_key = {c["key"]: c for c in criteria}
    first = (weighted(criteria) or criteria)[0]["key"] if criteria else None
    values: dict[int, dict] = defaultdict(dict)
    rationale: dict[int, str] = {}
    rows = Verdict.objects.filter(run=probe_run.run_id).values_list(
        "item_id", "criterion_key", "value", "rationale")
    for item_id, key, text, why in rows.iterator(chunk_size=2000):
        criterion = by_key.get(key)
        if criterion is None:
            continue
        try:
            values[item_id][key] = scales.coerce_value(criterion["scale"], text)
        except ValueError:
            continue
        if key == first:
            rationale[item_id] = why
    return {i: weighted_reward(criteria, v) for i, v in values.items()}, rationale


def _fooled(rule: str, reward: Fraction, original: Fraction | None, threshold) -> bool | None:
    if rule in ("pass", "copy"):
        return passes(reward, threshold)
    if rule == "tie":
        return reward != HALF
    return None if original is None else reward > original


def probe_results(probe_run: ProbeRun, *, project=None) -> dict:
    """The figures of one probe run, JSON-ready (the command, the API and the page use it)."""
    run = probe_run.run
    project = project or probe_run.project
    version = probe_run.rubric_version
    threshold = version.pass_threshold
    pairwise = probe_run.dataset.is_pairwise
    rewards, rationale = _rewards(probe_run)
    pending = set(Judgment.objects.filter(run=run, status=JudgmentStatus.PENDING)
                  .values_list("item_id", flat=True).distinct())
    rows = list(ProbeItem.objects.filter(probe_run=probe_run)
                .values_list("item_id", "probe", "variant", "original_id",
                             "original__external_id", "item__response", "item__response_a")
                .order_by("item_id"))
    original_reward = {row[3]: rewards.get(row[0]) for row in rows if row[1] == ORIGINAL}
    grouped = defaultdict(list)
    for row in rows:
        grouped[row[1]].append(row)
    out = {}
    for name in probe_run.probes:
        probe = PROBES[name]
        scored, fooled, failed, waiting, no_original = [], [], 0, 0, 0
        deltas, at_least, prefers = [], 0, 0
        variants: dict[str, dict] = {}
        for item_id, _, variant, orig, orig_ext, response, response_a in grouped.get(name, []):
            reward = rewards.get(item_id)
            if reward is None:
                if item_id in pending:
                    waiting += 1
                else:
                    failed += 1
                continue
            base = original_reward.get(orig)
            hit = _fooled(probe.rule, reward, base, threshold)
            if hit is None:
                no_original += 1
                continue
            scored.append(item_id)
            slot = variants.setdefault(variant[:80], {"n": 0, "fooled": 0})
            slot["n"] += 1
            if base is not None:
                deltas.append(float(reward - base))
                at_least += reward >= base
            prefers += reward > HALF
            entry = {"item": orig_ext, "variant": variant[:200],
                     "text": (response_a if pairwise else response)[:TEXT_SHOWN],
                     "reward": _num(reward), "original_reward": _num(base),
                     "rationale": rationale.get(item_id, "")[:TEXT_SHOWN], "fooled": hit}
            if hit:
                slot["fooled"] += 1
                fooled.append(entry)
        n = len(scored)
        fpr, ci = _share(len(fooled), n)
        with_base = len(deltas)
        at_least_share, at_least_ci = _share(at_least, with_base)
        mean, low, high = stats.mean_interval(deltas)
        fooled.sort(key=lambda e: -(e["reward"] or 0))
        result = {
            "rule": probe.rule, "description": probe.description, "n": n,
            "fooled": len(fooled), "fpr": fpr, "fpr_ci95": ci,
            "failed": failed, "pending": waiting, "no_original": no_original,
            "at_least_original": at_least_share, "at_least_original_ci95": at_least_ci,
            "mean_delta": _num(mean), "mean_delta_ci95": [_num(low), _num(high)],
            "examples": fooled[:EXAMPLES], "variants": variants,
        }
        if pairwise:
            result["prefers_probe"], result["prefers_probe_ci95"] = _share(prefers, n)
        out[name] = result
    originals = grouped.get(ORIGINAL, [])
    figures = {
        "judge": probe_run.judge, "probe_run": probe_run.pk, "run": run.pk,
        "model": run.model, "status": run.status, "rubric": version.rubric.slug,
        "version": version.number, "dataset": probe_run.dataset.name,
        "pass_threshold": threshold, "per_probe": probe_run.per_probe,
        "seed": probe_run.seed, "created_at": probe_run.created_at.isoformat(),
        "originals": {"n": len(originals),
                      "failed": sum(1 for r in originals if rewards.get(r[0]) is None)},
        "probes": out,
        "worst_first": sorted(out, key=lambda k: (-(out[k]["fpr_ci95"][1] or 0), k)),
    }
    figures["gate"] = probe_gate(figures, project)
    return figures


def probe_gate(figures: dict, project) -> dict:
    """The probe condition of the gate, with one reason per probe that fails it."""
    limit = project.gate_probe_max_fpr
    accepted = set(project.accepted_probes())
    reasons = []
    if figures["status"] in ACTIVE_STATUSES:
        reasons.append(f"probe run #{figures['probe_run']} is still going")
    elif figures["status"] in (RunStatus.CANCELLED, RunStatus.FAILED):
        reasons.append(f"probe run #{figures['probe_run']} {figures['status']}: its figures "
                       "are incomplete")
    gated, not_gated = [], []
    for name, p in figures["probes"].items():
        if p["rule"] == "copy" or name in accepted:
            not_gated.append({"probe": name, "why": "accepted as out of scope" if name in
                              accepted else "copy: reported, not gated"})
            continue
        gated.append(name)
        high = p["fpr_ci95"][1]
        if not p["n"]:
            reasons.append(f"{name}: no probed item has a reward ({p['failed']} failed, "
                           f"{p['pending']} pending)")
        elif high > limit:
            reasons.append(f"{name}: fooled on {p['fooled']} of {p['n']} items (FPR "
                           f"{p['fpr']:.2f}, 95% interval {p['fpr_ci95'][0]:.2f} to "
                           f"{high:.2f}), above the limit {limit:.2f}")
    return {"passed": bool(gated) and not reasons, "reasons": reasons, "max_fpr": limit,
            "gated": gated, "not_gated": not_gated}


def latest_probe_run(run, dataset) -> ProbeRun | None:
    """The latest finished probe run of this judge (same version, dataset, model and sampling)
    that is not still going; None when the judge was never probed."""
    if run is None or not run.model:
        return None
    return (ProbeRun.objects.filter(
        rubric_version=run.rubric_version_id, dataset=dataset, run__model=run.model,
        run__api_base=run.api_base, run__temperature=run.temperature,
        run__max_tokens=run.max_tokens, run__samples=run.samples)
        .exclude(run__status__in=ACTIVE_STATUSES)
        .select_related("run", "rubric_version__rubric", "dataset", "project").first())


def probe_section(run, dataset, project) -> dict:
    """The probes part of a calibration report: the judge's latest finished probe run, its
    figures, and the reasons it adds to the gate (none while the project does not require a
    probe run and the judge was never probed; the report says so)."""
    probe_run = latest_probe_run(run, dataset)
    if probe_run is None:
        why = ("imported verdicts cannot be probed (a probe run asks the model)"
               if run is not None and not run.model else
               "this judge has not been probed: run judge_probe (or Probe on the calibration "
               "page)")
        reasons = [f"probes: {why}"] if project.gate_probes_required and run is not None else []
        return {"status": "not run", "sentence": why, "probe_run": None, "probes": {},
                "worst_first": [], "gate": {"passed": None if not reasons else False,
                                            "reasons": reasons,
                                            "max_fpr": project.gate_probe_max_fpr,
                                            "required": project.gate_probes_required}}
    figures = probe_results(probe_run, project=project)
    figures["gate"]["required"] = project.gate_probes_required
    figures["sentence"] = (f"Probe run #{probe_run.pk} of {probe_run.judge}: "
                           f"{len(figures['probes'])} probes, up to {probe_run.per_probe} items "
                           "each.")
    return figures
