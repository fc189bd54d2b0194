from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.exports.bundle import reward_name
from apps.exports.models import ExportFormat
from apps.exports.services import GateRefused, judge_export, refusal_line, unpack
from apps.judging.models import FINISHED_STATUSES, JudgeRun
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
        parser.add_argument("--reference-column", default=None,
                            help="pairwise rubrics: the dataset column each completion is "
                                 "compared with (default: reference)")
        parser.add_argument("--overwrite", action="store_true",
                            help="replace the files of an existing --out")

    def handle(self, *args, **opts):
        if opts["format"] not in ExportFormat.values:  # here, not argparse: one line
            raise CommandError(f"unknown format '{opts['format']}'; one of "
                               f"{', '.join(ExportFormat.values)}")
        project = project_or_error(opts["project"])
        rubric = rubric_or_error(project, opts["rubric"])
        runs = JudgeRun.objects.filter(rubric_version__rubric=rubric, status__in=FINISHED_STATUSES)
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
        if opts["reference_column"] is not None and rubric.mode != "pairwise":
            raise CommandError(f"--reference-column is for pairwise rubrics; '{rubric.slug}' is "
                               "pointwise (a pointwise prompt's reference is the 'reference' "
                               "column)")
        out = Path(opts["out"])
        zipped = opts["format"] not in (ExportFormat.OPENAI, ExportFormat.JSON)
        folder = zipped and out.suffix != ".zip"
        if folder and out.exists() and not out.is_dir():
            raise CommandError(f"--out {out} is a file; give a folder or a .zip path")
        targets = _targets(out, folder=folder, fmt=opts["format"],
                           name=reward_name(run.rubric_version))
        existing = [t for t in targets if t.exists()]
        if existing and not opts["overwrite"]:
            raise CommandError(f"--out {out} already holds {existing[0].name}"
                               + (f" and {len(existing) - 1} more" if len(existing) > 1 else "")
                               + "; --overwrite replaces them")
        try:
            export = judge_export(run=run, fmt=opts["format"], force=opts["force"],
                                  model=opts["model"],
                                  reference_column=opts["reference_column"] or "reference")
        except GateRefused as exc:
            raise CommandError("refused: " + refusal_line(exc.reasons)
                               + "; --force exports it as UNCALIBRATED") from None
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        if folder:
            files = unpack(export)
            out.mkdir(parents=True, exist_ok=True)
            for name, data in files.items():
                _write(out / name, data)
            written = f"{out}/ ({len(files)} files)"
        else:
            target = out / export.filename if out.is_dir() else out
            target.parent.mkdir(parents=True, exist_ok=True)
            _write(target, bytes(export.artifact))
            written = str(target)
        state = "CALIBRATED" if export.calibrated else "UNCALIBRATED"
        for warning in export.status.warnings:
            self.stderr.write(f"warning: {warning}")
        self.stdout.write(f"export {export.pk}: {state} {export.format} -> {written}")


def _targets(out: Path, *, folder: bool, fmt: str, name: str) -> list[Path]:
    """The files an export would write, known before it is made (nothing is stored when one
    of them is in the way)."""
    if folder:
        extra = {ExportFormat.TRL: ["train_trl.py"], ExportFormat.VERL: ["verl_reward.yaml"],
                 ExportFormat.OPENRLHF: ["openrlhf_reward.sh"]}.get(fmt, [])
        return [out / f for f in ("judge.json", "calibration.json", "rubric.yaml",
                                  "reward.py", "README.md", *extra)]
    if out.is_dir():
        filename = {ExportFormat.OPENAI: f"{name}.openai.json", ExportFormat.JSON: f"{name}.json",
                    ExportFormat.BUNDLE: f"{name}.zip"}.get(fmt, f"{name}-{fmt}.zip")
        return [out / filename]
    return [out]


def _write(path: Path, data: bytes) -> None:
    """Whole or not at all: a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)
