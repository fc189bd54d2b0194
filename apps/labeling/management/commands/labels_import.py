from __future__ import annotations

import json
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.datasets.cli import dataset_or_error
from apps.projects.cli import RubricVersionFlag, project_or_error


class Command(RubricVersionFlag, BaseCommand):
    help = (
        "Import human labels exported from Label Studio (JSON export) or Argilla (records as "
        "JSON) into a dataset's items, mapped to a rubric's criteria by a mapping file. All or "
        "nothing."
    )
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("file", help="the tool's export (a JSON array)")
        parser.add_argument("--project", required=True)
        parser.add_argument("--dataset", required=True, help="dataset name (its items' ids)")
        parser.add_argument("--mapping", required=True, help="mapping file (YAML or JSON)")
        parser.add_argument("--format", choices=["labelstudio", "argilla"],
                            help="default: the mapping's format")
        parser.add_argument("--rubric", help="rubric slug (default: the project's only rubric "
                                             "of the dataset's kind)")
        parser.add_argument("--version", type=int, dest="number",
                            help="rubric version (default: latest published, else the draft)")
        parser.add_argument("--new-round", action="store_true",
                            help="store labels of annotators who already labelled an item as "
                                 "their next round (default: refuse them)")
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle(self, *args, **opts):
        from apps.labeling.interop_import import labels_import
        from apps.rubrics.cli import rubric_or_error, version_or_error
        from apps.rubrics.selectors import version_for_import, why_no_rubric

        project = project_or_error(opts["project"])
        dataset = dataset_or_error(project, opts["dataset"])
        if opts["rubric"]:
            version = version_or_error(rubric_or_error(project, opts["rubric"]), opts["number"])
        else:
            version = version_for_import(project, mode=dataset.kind)
            if version is None:
                raise CommandError(why_no_rubric(project, mode=dataset.kind))
            if opts["number"] is not None:
                version = version_or_error(version.rubric, opts["number"])
        path, mapping = Path(opts["file"]), Path(opts["mapping"])
        limit = settings.DATASET_MAX_UPLOAD_MB * 1024 * 1024
        try:
            if os.stat(path).st_size > limit:
                raise CommandError(f"{path}: larger than {settings.DATASET_MAX_UPLOAD_MB} MB "
                                   "(DATASET_MAX_UPLOAD_MB)")
            data = path.read_bytes()
            mapping_text = mapping.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise CommandError(f"{exc.filename}: no such file") from None
        except UnicodeDecodeError:
            raise CommandError(f"{mapping}: not UTF-8 text") from None
        except OSError as exc:
            raise CommandError(f"{exc.filename}: {exc.strerror}") from None
        result = labels_import(dataset=dataset, version=version, data=data,
                               mapping_text=mapping_text, fmt=opts["format"],
                               new_round=opts["new_round"])
        if not result.ok:
            for problem in result.problems:
                where = f"record {problem.line}" if problem.line else "file"
                field = f", {problem.field}" if problem.field else ""
                self.stderr.write(f"{path}: {where}{field}: {problem.message}")
            raise CommandError(f"{path}: {result.summary()}")
        if opts["json"]:
            self.stdout.write(json.dumps({
                "labels": result.labels, "items": result.items, "annotators": result.annotators,
                "new_rounds": result.new_rounds, "skipped": result.skipped,
                "rubric": version.rubric.slug, "version": version.number}))
        else:
            self.stdout.write(f"{result.summary()} ({version.rubric.slug} v{version.number})")
