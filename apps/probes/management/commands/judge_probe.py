from __future__ import annotations

import json
import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.datasets.cli import dataset_or_error
from apps.judging.models import FINISHED_STATUSES, RunStatus
from apps.probes.generate import DEFAULT_PER_PROBE
from apps.probes.measure import probe_results
from apps.probes.services import probe_run_start
from apps.projects.cli import project_or_error, validation_line
from apps.rubrics.cli import rubric_or_error


class Command(BaseCommand):
    help = ("Run the reward-hacking probe suite against a judge on the workers; print per-probe "
            "false-positive rates and the gate as JSON.")

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--rubric", required=True)
        parser.add_argument("--dataset", required=True, help="dataset name")
        parser.add_argument("--judge", required=True,
                            help="the judge under test: a run id or a judge name")
        parser.add_argument("--probes", default="all",
                            help="all (default) or a comma-separated list of probe names")
        parser.add_argument("--per-probe", type=int, default=DEFAULT_PER_PROBE,
                            help=f"items per probe (default {DEFAULT_PER_PROBE})")
        parser.add_argument("--seed", type=int, default=0, help="seed of the item sample")
        parser.add_argument("--concurrency", type=int,
                            help="calls in flight (default: the judge's own)")
        parser.add_argument("--wait", action="store_true", help="block until the run finishes")
        parser.add_argument("--poll", type=float, default=0.5, help="seconds between checks")
        parser.add_argument("--format", choices=["json"], default="json")
        parser.add_argument("--fail-on-gate", action="store_true",
                            help="exit 1 when the probes do not pass the gate")

    def handle(self, *args, **opts):
        if not 0 < opts["poll"] <= 60:
            raise CommandError(f"--poll {opts['poll']}: give seconds, more than 0 and up to 60")
        project = project_or_error(opts["project"])
        rubric = rubric_or_error(project, opts["rubric"])
        dataset = dataset_or_error(project, opts["dataset"])
        try:
            probe_run = probe_run_start(rubric=rubric, dataset=dataset, judge=opts["judge"],
                                        probes=opts["probes"], per_probe=opts["per_probe"],
                                        seed=opts["seed"], concurrency=opts["concurrency"])
        except ValidationError as exc:
            raise CommandError(" ".join(validation_line(exc).split())) from None
        run = probe_run.run
        if opts["wait"]:
            try:
                while True:
                    run.refresh_from_db(fields=["status"])
                    if not run.is_active:
                        break
                    time.sleep(opts["poll"])
            except KeyboardInterrupt:
                raise CommandError(f"stopped waiting; probe run {probe_run.pk} (judge run "
                                   f"{run.pk}) goes on in the background") from None
        run.refresh_from_db()
        figures = probe_results(probe_run)
        self.stdout.write(json.dumps(figures, indent=2, ensure_ascii=False))
        if opts["wait"] and run.status not in FINISHED_STATUSES:
            raise CommandError(" ".join(f"probe run {probe_run.pk} (judge run {run.pk}) ended "
                                        f"{run.status} {run.error_message}".split()))
        if run.status == RunStatus.COMPLETED_WITH_FAILURES:
            # The figures count the failed items per probe, apart from n; the gate sees the
            # smaller n through wider intervals.
            self.stderr.write(f"probe run {probe_run.pk}: some calls failed; each probe's "
                              "'failed' says how many items have no reward")
        if opts["fail_on_gate"] and not figures["gate"]["passed"]:
            raise CommandError("the probes do not pass the gate: "
                               + "; ".join(figures["gate"]["reasons"]))
