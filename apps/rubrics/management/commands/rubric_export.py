from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.projects.cli import RubricVersionFlag, project_or_error
from apps.rubrics import yaml_io
from apps.rubrics.cli import rubric_or_error, version_or_error
from apps.rubrics.selectors import version_content


class Command(RubricVersionFlag, BaseCommand):
    help = "Print a rubric version in its YAML form (round-trips with rubric_import)."
    # No system checks: they import the whole URLconf (numpy, scipy, scikit-learn) for nothing.
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--rubric", required=True, help="rubric slug")
        parser.add_argument(
            "--version", type=int, dest="number",
            help="version number (default: latest published, else the draft)",
        )

    def handle(self, *args, **options):
        project = project_or_error(options["project"])
        rubric = rubric_or_error(project, options["rubric"])
        version = version_or_error(rubric, options["number"])
        self.stdout.write(yaml_io.dump(version_content(version)), ending="")
