"""The monthly cost ceiling of a project (issue: safe to put on a network).

The operator may set MONTHLY_COST_LIMIT_USD, and a project's owners a lower ceiling of their own
(Project.monthly_cost_cap). A run is refused when this calendar month's known spend, plus what the
project's active runs still have queued, plus the new run's estimate would pass the ceiling.

What counts is the cost litellm knows a price for (Judgment.cost_usd). A model without a price
cannot be bounded: with a ceiling in force such a run is refused, unless it names its own
api_base (a self-hosted server, which has no per-call price). The check is made when a run is
started or resumed, under the project's row lock that the queued-calls cap already takes
(planning._check_cap), so two starts take turns; a run that costs more than its estimate is
seen by the next start, not stopped half-way.
"""

from __future__ import annotations

from django.db.models import Avg, Count, Q, Sum
from django.utils import timezone

from apps.judging.models import ACTIVE_STATUSES, JudgeRun, Judgment, JudgmentStatus
from apps.projects.models import Project


def month_start(now=None):
    now = timezone.localtime(now or timezone.now())
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def spent_this_month_usd(project: Project) -> float:
    total = Judgment.objects.filter(
        run__project=project, finished_at__gte=month_start(), cost_usd__isnull=False
    ).aggregate(total=Sum("cost_usd"))["total"]
    return float(total or 0.0)


def queued_cost_usd(project: Project) -> float:
    """What the project's active runs still have queued, at each run's mean cost per call so
    far (a run that has not spent yet counts 0 here; its start was checked on its estimate)."""
    runs = (
        JudgeRun.objects.filter(project=project, status__in=ACTIVE_STATUSES)
        .annotate(
            pending=Count("judgments", filter=Q(judgments__status=JudgmentStatus.PENDING)),
            mean=Avg("judgments__cost_usd", filter=Q(judgments__cost_usd__isnull=False)),
        )
        .values_list("pending", "mean")
    )
    return float(sum(pending * (mean or 0.0) for pending, mean in runs))


def monthly_cost_error(project: Project, *, estimate_usd: float | None,
                       api_base: str = "") -> str | None:
    """Why a run with this estimate may not start now, or None."""
    cap = project.monthly_cost_cap()
    if cap is None:
        return None
    if estimate_usd is None:
        if api_base:
            return None
        return (f"The project has a monthly cost ceiling of ${cap:,.2f}, and litellm knows no "
                "price for this model, so its cost cannot be bounded.")
    spent = spent_this_month_usd(project)
    queued = queued_cost_usd(project)
    if spent + queued + estimate_usd > cap:
        return (f"This run would cost about ${estimate_usd:,.2f}; with ${spent:,.2f} spent this "
                f"month and ${queued:,.2f} queued that passes the project's monthly ceiling of "
                f"${cap:,.2f}.")
    return None
