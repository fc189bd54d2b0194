"""Starting a probe run from the calibration page: the same service as judge_probe and the
API; the run's progress is the judge run's own page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.calibration.selectors import get_calibration_for_user
from apps.datasets.models import Dataset
from apps.probes.generate import DEFAULT_PER_PROBE
from apps.probes.services import probe_run_start
from apps.projects.access import Need


@login_required
@require_POST
def probe_start(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_calibration_for_user(request.user, slug, rubric_slug, need=Need.WRITE)
    dataset_id = request.POST.get("dataset", "")
    dataset = get_object_or_404(Dataset, project=access.project,
                                pk=int(dataset_id) if dataset_id.isdigit() and
                                len(dataset_id) < 18 else 0)
    text = request.POST.get("per_probe", "").strip() or str(DEFAULT_PER_PROBE)
    # A number too long to be a size is refused by the service's own range check.
    size = int(text) if text.isdigit() and len(text) < 8 else 0
    try:
        probe_run = probe_run_start(rubric=rubric, dataset=dataset,
                                    judge=request.POST.get("judge", ""),
                                    probes=request.POST.get("probes") or "all",
                                    per_probe=size, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        back = reverse("calibration_dashboard", args=[access.project.slug, rubric.slug])
        return redirect(f"{back}?dataset={dataset.pk}")
    messages.success(request, f"Probe run #{probe_run.pk} started: {probe_run.run.planned_calls:,}"
                              " calls. Its figures appear on the calibration page when it ends.")
    return redirect("run_detail", slug=access.project.slug, run_id=probe_run.run_id)
