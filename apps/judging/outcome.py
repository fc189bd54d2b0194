"""How a run ends, in words that do not lie (docs/decisions/0006).

When no planned call is pending any more, the run is named by what its calls became:

1. `completed`: every planned call is done (a verdict that parsed and fits the scale).
2. `completed_with_failures`: some calls failed or gave invalid answers, but no more than
   JUDGE_RUN_MAX_FAILED_SHARE of the planned calls; the counts and kinds go with it everywhere.
3. `failed`: none was done, or more than that share failed; the run's error says how many and
   of which kinds. (A run-level error, such as a wrong key, fails the run earlier, in the
   executor, with its pending calls kept for a resume.)

The same share decides whether the export gate takes a run's verdicts (`too_many_failed`).
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from apps.judging.models import (
    BatchStatus,
    JudgeBatch,
    JudgeRun,
    Judgment,
    JudgmentStatus,
    RunKind,
    RunStatus,
)

FAILED_KINDS = (JudgmentStatus.FAILED, JudgmentStatus.INVALID)


def max_failed_share() -> float:
    return settings.JUDGE_RUN_MAX_FAILED_SHARE


def failure_kinds(run: JudgeRun) -> dict[str, int]:
    """{error kind: calls} of the run's failed and invalid calls, most common first."""
    rows = (Judgment.objects.filter(run=run, status__in=FAILED_KINDS)
            .values("error_kind").annotate(n=Count("id")).order_by("-n", "error_kind"))
    return {row["error_kind"] or "unknown": row["n"] for row in rows}


def describe_failures(failed: int, planned: int, kinds: dict[str, int]) -> str:
    share = failed / planned if planned else 0.0
    listed = ", ".join(f"{kind} {n:,}" for kind, n in kinds.items())
    return f"{failed:,} of {planned:,} calls failed or invalid ({share:.0%}): {listed}"


def decide(*, planned: int, done: int, failed: int) -> str:
    """The final state of a run with nothing pending (see the module docstring)."""
    if failed == 0 and done >= planned:
        return RunStatus.COMPLETED
    if done == 0 or (planned and failed / planned > max_failed_share()):
        return RunStatus.FAILED
    return RunStatus.COMPLETED_WITH_FAILURES


def finalize_if_done(run: JudgeRun) -> bool:
    """Name the run's final state once nothing is pending; False while work remains."""
    from apps.judging.aggregate import build_verdicts

    counts = dict(Judgment.objects.filter(run=run).values("status").annotate(n=Count("id"))
                  .values_list("status", "n"))
    if counts.get(JudgmentStatus.PENDING):
        return False
    # A finished batch built its own verdicts; one whose task died before that did not. Build
    # per batch (bounded memory), and only where needed: idempotent either way.
    for number in JudgeBatch.objects.filter(run=run).exclude(
            status=BatchStatus.DONE).values_list("number", flat=True):
        build_verdicts(run, batch=number)
    done = counts.get(JudgmentStatus.DONE, 0)
    failed = sum(counts.get(status, 0) for status in FAILED_KINDS)
    planned = max(run.planned_calls, done + failed)
    status = decide(planned=planned, done=done, failed=failed)
    fields = {"status": status, "finished_at": timezone.now()}
    if status == RunStatus.FAILED:
        summary = describe_failures(failed, planned, failure_kinds(run))
        reason = ("no call was judged" if done == 0 else
                  f"more than {max_failed_share():.0%} of the calls failed")
        earlier = JudgeRun.objects.filter(pk=run.pk).values_list("error_message",
                                                                 flat=True).first()
        fields["error_message"] = "; ".join(
            filter(None, [earlier, f"{reason}: {summary}"]))[:4000]
    finished = JudgeRun.objects.filter(
        pk=run.pk, status__in=(RunStatus.QUEUED, RunStatus.RUNNING)).update(**fields)
    return bool(finished)


def too_many_failed(run: JudgeRun, counts: dict | None = None) -> str | None:
    """Why the gate refuses this run's verdicts as evidence, or None. Imported verdicts are
    not calls of ours: their share is not judged here."""
    if run.kind != RunKind.LIVE:
        return None
    share = failed_share(run, counts)
    if share is not None and share > max_failed_share():
        return (f"{share:.0%} of the run's calls failed or were invalid, more than the "
                f"{max_failed_share():.0%} allowed (JUDGE_RUN_MAX_FAILED_SHARE)")
    return None


def gate_reasons(run: JudgeRun | None, counts: dict | None = None) -> list[str]:
    """Why the gate refuses this run as evidence, by how its calls ended (empty when fine)."""
    if run is None or run.kind != RunKind.LIVE:
        return []
    if run.status == RunStatus.FAILED:
        return [f"run #{run.pk} failed: its verdicts are not evidence"]
    reason = too_many_failed(run, counts)
    return [reason] if reason else []


def failed_share(run: JudgeRun, counts: dict | None = None) -> float | None:
    """Failed or invalid calls over planned calls (None for a run without planned calls)."""
    if counts is None:
        counts = run_failure_counts([run]).get(run.pk, {"failed": 0})
    planned = run.planned_calls
    return counts["failed"] / planned if planned else None


def run_failure_counts(runs) -> dict[int, dict]:
    """{run id: {"failed": n, "kinds": {kind: n}}} for several runs in one query (for lists)."""
    out: dict[int, dict] = {r.pk: {"failed": 0, "kinds": {}} for r in runs}
    # Imported verdicts have no calls of ours: nothing to count (and no query).
    ids = [r.pk for r in runs if r.kind == RunKind.LIVE]
    if not ids:
        return out
    rows = (Judgment.objects.filter(run_id__in=ids, status__in=FAILED_KINDS)
            .values("run_id", "error_kind").annotate(n=Count("id")).order_by("-n"))
    for row in rows:
        entry = out[row["run_id"]]
        entry["failed"] += row["n"]
        kind = row["error_kind"] or "unknown"
        entry["kinds"][kind] = entry["kinds"].get(kind, 0) + row["n"]
    return out


def with_failure_share(runs) -> list[JudgeRun]:
    """The runs, each with `failed_calls`, `failure_kinds` and `failed_share` set (one query),
    for every list that offers runs as evidence."""
    runs = list(runs)
    counts = run_failure_counts(runs)
    for run in runs:
        entry = counts[run.pk]
        run.failed_calls = entry["failed"]
        run.failure_kinds = entry["kinds"]
        run.failed_share = (entry["failed"] / run.planned_calls) if run.planned_calls else None
        run.failed_percent = None if run.failed_share is None else 100.0 * run.failed_share
    return runs

