"""Every look at test results is recorded; many looks make a lucky pass likely.

A report computed on test items (the gate's report, the calibration index, the JSON, the
command, the API, an export) records who saw which rubric version's result, when, and where.
The report then says how many versions have been checked against the test split: after
WARN_AFTER of them it warns that picking the best of many versions on the same test items
overstates the winner (docs/decisions/0014).
"""

from __future__ import annotations

from django.db.models import Count

from apps.calibration.models import CalibrationSplit, TestLook

# With a one-sided 2.5 % chance per version of clearing the interval's lower bound by luck,
# three versions checked give about 7 %, five about 12 %, ten about 22 % (ADR 0014).
WARN_AFTER = 3


def record_looks(*, split: CalibrationSplit, looks: list[tuple[int, int | None]], user=None,
                 source: str) -> None:
    """`looks` are (version id, run id or None) pairs, one row each, in one query."""
    if not looks:
        return
    who = user if getattr(user, "is_authenticated", False) else None
    TestLook.objects.bulk_create(
        TestLook(split=split, version_id=version, run_id=run, user=who, source=source[:32])
        for version, run in looks)


def looks_summary(split: CalibrationSplit | None) -> dict:
    """How many looks, and at how many versions (by number), with the warning when due."""
    out = {"looks": 0, "versions_checked": 0, "versions": [], "warn_after": WARN_AFTER,
           "warning": None}
    if split is None:
        return out
    rows = (TestLook.objects.filter(split=split).values("version__number")
            .annotate(n=Count("id")).order_by("version__number"))
    out["versions"] = [r["version__number"] for r in rows]
    out["looks"] = sum(r["n"] for r in rows)
    out["versions_checked"] = len(out["versions"])
    if out["versions_checked"] > WARN_AFTER:
        out["warning"] = (
            f"{out['versions_checked']} rubric versions have been checked against the same "
            f"test items (more than {WARN_AFTER}): the best of them looks better than it is, "
            "because some of its margin is luck. Treat a pass as provisional and confirm it "
            "on newly labelled items.")
    return out
