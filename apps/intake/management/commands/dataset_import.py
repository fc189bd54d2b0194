from __future__ import annotations

import json
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.datasets.models import Kind
from apps.datasets.rows import guess_format
from apps.projects.cli import project_or_error


class Command(BaseCommand):
    help = (
        "Import items (JSONL or CSV) into a dataset, with human labels and external judge "
        "verdicts when the rows carry them. All or nothing."
    )
    # System checks import the whole URLconf (and with it numpy, scipy and scikit-learn for
    # the calibration pages): 190 MB and a second of start-up an import does not need.
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--project", required=True)
        parser.add_argument("--dataset", required=True, help="dataset name (created if new)")
        parser.add_argument("--format", choices=["jsonl", "csv"], help="default: from the suffix")
        parser.add_argument("--kind", choices=Kind.values, help="default: from the rows")
        parser.add_argument("--rubric", help="rubric slug that labels and verdicts belong to")
        parser.add_argument("--description", default="")
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle(self, *args, **options):
        # Imported lazily: intake stands above the apps, commands only call it.
        from apps.intake.services import dataset_file_import

        project = project_or_error(options["project"])
        path = Path(options["file"])
        try:
            fmt = options["format"] or guess_format(path.name)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        try:
            size = os.stat(path).st_size
            stream = path.open("rb")
        except FileNotFoundError:
            raise CommandError(f"{path}: no such file") from None
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from None
        with stream:
            result = dataset_file_import(
                project=project, dataset_name=options["dataset"], stream=stream, fmt=fmt,
                size=size, kind=options["kind"], rubric_slug=options["rubric"],
                description=options["description"],
            )
        if not result.ok:
            for problem in result.problems:
                self.stderr.write(f"{path}: {problem}")
            raise CommandError(f"{path}: {result.summary()}")
        if options["json"]:
            self.stdout.write(json.dumps({
                "dataset": result.dataset.name, "dataset_id": result.dataset.pk,
                "items": result.items, "labels": result.labels, "verdicts": result.verdicts,
                "judges": result.judges,
            }))
        else:
            self.stdout.write(result.summary())
