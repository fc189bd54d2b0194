from __future__ import annotations

import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.projects.cli import project_or_error
from apps.rubrics import services, yaml_io
from apps.rubrics.content import ContentError


class Command(BaseCommand):
    help = "Create or update a rubric from its YAML form; prints the rubric slug and version."
    # No system checks: they import the whole URLconf (numpy, scipy, scikit-learn) for nothing.
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("file", help="rubric YAML file ('-' for standard input)")
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--publish", action="store_true", help="publish the imported version")
        parser.add_argument("--note", default="", help="what changed and why (with --publish)")

    def handle(self, *args, **options):
        project = project_or_error(options["project"])
        path = options["file"]
        try:
            if path == "-":
                text = sys.stdin.read()
            else:
                text = Path(path).read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise CommandError(f"{path}: no such file") from None
        except UnicodeDecodeError:
            raise CommandError(f"{path}: not UTF-8 text") from None
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from None
        try:
            content = yaml_io.parse(text)
            rubric, version, changed = services.rubric_import(
                project=project, content=content, publish=options["publish"],
                note=options["note"] or f"Imported from {Path(path).name}",
            )
        except ContentError as exc:
            # Every problem on stderr, one a line; the first one is also the command's reason.
            if len(exc.errors) > 1:
                for error in exc.errors:
                    self.stderr.write(f"{path}: {error}")
            more = f" (and {len(exc.errors) - 1} more above)" if len(exc.errors) > 1 else ""
            raise CommandError(f"{path}: {exc.errors[0]}{more}; nothing imported") from None
        except ValidationError as exc:
            raise CommandError(f"{path}: {' '.join(exc.messages)}") from None
        state = "published" if version.is_published else "draft"
        suffix = "" if changed else " (unchanged)"
        self.stdout.write(f"{rubric.slug} {version.number} {state}{suffix}")
