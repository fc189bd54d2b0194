from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.projects.cli import project_or_error
from apps.rubrics import yaml_io
from apps.rubrics.models import Rubric
from apps.rubrics.selectors import latest_published, version_content


class Command(BaseCommand):
    help = "Print a rubric version in its YAML form (round-trips with rubric_import)."

    def add_base_argument(self, parser, *args, **kwargs):
        # The command contract uses --version N for the rubric version, not Django's version.
        if "--version" in args:
            return
        super().add_base_argument(parser, *args, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--rubric", required=True, help="rubric slug")
        parser.add_argument(
            "--version", type=int, dest="number",
            help="version number (default: latest published, else the draft)",
        )

    def handle(self, *args, **options):
        project = project_or_error(options["project"])
        rubric = Rubric.objects.filter(project=project, slug=options["rubric"]).first()
        if rubric is None:
            raise CommandError(f"no rubric '{options['rubric']}' in project '{project.slug}'")
        if options["number"] is not None:
            version = rubric.versions.filter(number=options["number"]).first()
            if version is None:
                raise CommandError(f"rubric '{rubric.slug}' has no version {options['number']}")
        else:
            version = latest_published(rubric) or rubric.versions.order_by("-number").first()
        self.stdout.write(yaml_io.dump(version_content(version)), ending="")
