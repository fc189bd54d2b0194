from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from apps.calibration.report import PARTS, calibration_report
from apps.calibration.selectors import NotFound, resolve_judge, resolve_version
from apps.datasets.cli import dataset_or_error
from apps.judging.models import FINISHED_STATUSES, JudgeRun
from apps.projects.cli import RubricVersionFlag, project_or_error
from apps.rubrics.cli import rubric_or_error


class Command(RubricVersionFlag, BaseCommand):
    help = "Print the calibration report of a judge against the human labels, as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--rubric", required=True)
        parser.add_argument("--dataset", required=True, help="dataset name")
        parser.add_argument("--judge", help="run id or judge name (needed when several judges "
                                             "ran; without it the only finished run is used)")
        parser.add_argument("--version", type=int, dest="number",
                            help="rubric version (default: latest published)")
        parser.add_argument("--format", choices=["json"], default="json")
        parser.add_argument("--part", choices=list(PARTS), default="test",
                            help="which labelled items: the locked test split (default, what "
                                 "the gate uses), the development split, or all")
        parser.add_argument("--rounds", choices=["latest", "first"], default="latest",
                            help="which of an annotator's repeated labels of an item count "
                                 "(default: latest)")
        parser.add_argument("--no-bias", action="store_true", help="leave out the bias audit")
        parser.add_argument("--fail-on-gate", action="store_true",
                            help="exit 1 when the judge does not pass the gate")

    def handle(self, *args, **opts):
        project = project_or_error(opts["project"])
        rubric = rubric_or_error(project, opts["rubric"])
        dataset = dataset_or_error(project, opts["dataset"])
        try:
            version = resolve_version(rubric, opts["number"])
            if opts["judge"]:
                run = resolve_judge(version, dataset, opts["judge"])
            else:
                run = self._only_run(version, dataset)
        except NotFound as exc:
            raise CommandError(str(exc)) from None
        report = calibration_report(version=version, dataset=dataset, run=run,
                                    with_bias=not opts["no_bias"], part=opts["part"],
                                    source="command", rounds=opts["rounds"])
        self.stdout.write(json.dumps(report, indent=2, ensure_ascii=False))
        if opts["fail_on_gate"] and not report["gate"]["passed"]:
            raise CommandError("the judge does not pass the gate: "
                               + "; ".join(report["gate"]["reasons"]))

    def _only_run(self, version, dataset):
        """Without --judge: the one finished run, named on stderr; several is an error that
        lists them, so a script never reports on a judge it did not mean."""
        runs = list(JudgeRun.objects.filter(rubric_version=version, dataset=dataset,
                                            status__in=FINISHED_STATUSES).order_by("-created_at")[:21])
        where = f"{version.rubric.slug} v{version.number} on '{dataset.name}'"
        if not runs:
            raise NotFound(f"no finished judge run of {where}")
        if len(runs) > 1:
            listed = ", ".join(f"{r.name} (run {r.pk})" for r in runs[:20])
            more = " ..." if len(runs) > 20 else ""
            raise NotFound(f"several judges ran {where}: {listed}{more}; choose one with "
                           "--judge NAME_OR_RUN")
        run = runs[0]
        self.stderr.write(f"no --judge given: reporting on run {run.pk} ({run.name}), the only "
                          f"finished run of {where}")
        return run
