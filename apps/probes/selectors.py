"""The loader every probe view and endpoint uses (STYLE.md 2), and reads for pages."""

from __future__ import annotations

from django.shortcuts import get_object_or_404

from apps.probes.models import ProbeRun
from apps.projects.access import Need, ProjectAccess, get_project_for_user


def get_probe_run_for_user(user, project_slug: str, probe_run_id: int, *,
                           need: Need = Need.READ) -> tuple[ProbeRun, ProjectAccess]:
    """Membership first (outsiders 404), then the role (labellers 403: probes show verdicts)."""
    access = get_project_for_user(user, project_slug, need=need)
    probe_run = get_object_or_404(
        ProbeRun.objects.select_related("run", "rubric_version__rubric", "dataset", "project"),
        project=access.project, pk=probe_run_id)
    return probe_run, access
