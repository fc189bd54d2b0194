from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.projects import services
from apps.projects.cli import project_or_error, validation_line


def settings_dict(project) -> dict:
    out = {field: getattr(project, field) for field in services.SETTINGS_FIELDS}
    limit = out["monthly_cost_limit_usd"]
    out["monthly_cost_limit_usd"] = float(limit) if limit is not None else None
    out["queued_calls_cap_in_force"] = project.queued_calls_cap()
    out["monthly_cost_cap_in_force"] = project.monthly_cost_cap()
    return out


class Command(BaseCommand):
    help = ("Show a project's settings as JSON, or change them (gate thresholds, caps); "
            "the operator's ceilings apply.")
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--name")
        parser.add_argument("--description")
        parser.add_argument("--gate-min-n", type=int)
        parser.add_argument("--gate-min-kappa-lower", type=float)
        parser.add_argument("--gate-min-kappa", type=float)
        parser.add_argument("--gate-min-human-alpha", type=float)
        parser.add_argument("--gate-probe-max-fpr", type=float,
                            help="reward-hacking probes: most upper end of a probe's FPR interval")
        parser.add_argument("--gate-probes-accepted",
                            help="probes accepted as out of scope, comma-separated ('' for none)")
        parser.add_argument("--gate-probes-required", choices=["yes", "no"],
                            help="a judge without a probe run fails the gate")
        parser.add_argument("--max-queued-calls", type=int)
        parser.add_argument("--monthly-cost-limit-usd",
                            help="USD per calendar month, or 'none' for the server's ceiling")

    def handle(self, *args, **options):
        project = project_or_error(options["project"])
        changes = {field: options[field] for field in services.SETTINGS_FIELDS
                   if options.get(field) is not None}
        if "gate_probes_required" in changes:
            changes["gate_probes_required"] = changes["gate_probes_required"] == "yes"
        if "monthly_cost_limit_usd" in changes:
            raw = changes["monthly_cost_limit_usd"].strip().lower()
            changes["monthly_cost_limit_usd"] = None if raw in ("none", "") else raw
        if changes:
            try:
                services.project_update_settings(project=project, **changes)
            except ValidationError as exc:
                raise CommandError(validation_line(exc) + "; nothing changed") from None
        self.stdout.write(json.dumps(settings_dict(project), indent=2))
