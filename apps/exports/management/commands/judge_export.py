from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.exports.models import ExportFormat
from apps.exports.services import GateRefused, judge_export, unpack
from apps.judging.models import JudgeRun
from apps.projects.cli import RubricVersionFlag, project_or_error
from apps.rubrics.cli import rubric_or_error


class Command(RubricVersionFlag, BaseCommand):
    help = "Export a judge (bundle, OpenAI grader JSON, ...); refuses an uncalibrated judge " \
           "unless --force."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--rubric", required=True)
        parser.add_argument("--judge", required=True, help="run id or judge name")
        parser.add_argument("--format", required=True, help=" | ".join(ExportFormat.values))
        parser.add_argument("--out", required=True,
                            help="a folder (bundle files) or a file (.zip for bundles)")
        parser.add_argument("--force", action="store_true",
                            help="export a judge that fails the gate (marked UNCALIBRATED)")
        parser.add_argument("--version", type=int, dest="number", help="rubric version")
        parser.add_argument("--model", default="", help="litellm model for imported judges")
        parser.add_argument("--reference-column", default="reference")

    def handle(self, *args, **opts):
        if opts["format"] not in ExportFormat.values:  # here, not argparse: one line
            raise CommandError(f"unknown format '{opts['format']}'; one of "
                               f"{', '.join(ExportFormat.values)}")
        project = project_or_error(opts["project"])
        rubric = rubric_or_error(project, opts["rubric"])
        runs = JudgeRun.objects.filter(rubric_version__rubric=rubric, status="completed")
        if opts["number"] is not None:
            runs = runs.filter(rubric_version__number=opts["number"])
        judge = opts["judge"].strip().lstrip("#")
        run = runs.filter(pk=int(judge)).first() if judge.isdigit() else None
        run = run or runs.filter(name=opts["judge"]).order_by(
            "-rubric_version__number", "-created_at").first()
        if run is None:
            names = sorted(set(runs.values_list("name", flat=True)))
            raise CommandError(f"no finished judge '{opts['judge']}' for rubric '{rubric.slug}'; "
                               f"judges: {', '.join(names) or 'none'}")
        try:
            export = judge_export(run=run, fmt=opts["format"], force=opts["force"],
                                  model=opts["model"], reference_column=opts["reference_column"])
        except GateRefused as exc:
            raise CommandError("refused: the judge does not pass the gate ("
                               + "; ".join(exc.reasons) + "); --force exports it as "
                               "UNCALIBRATED") from None
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        out = Path(opts["out"])
        zipped = export.filename.endswith(".zip")
        if zipped and out.suffix != ".zip":
            if out.exists() and not out.is_dir():
                raise CommandError(f"--out {out} is a file; give a folder or a .zip path")
            out.mkdir(parents=True, exist_ok=True)
            for name, data in unpack(export).items():
                (out / name).write_bytes(data)
            written = f"{out}/ ({len(unpack(export))} files)"
        else:
            if out.is_dir():
                out = out / export.filename
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(bytes(export.artifact))
            written = str(out)
        state = "CALIBRATED" if export.calibrated else "UNCALIBRATED"
        self.stdout.write(f"export {export.pk}: {state} {export.format} -> {written}")
