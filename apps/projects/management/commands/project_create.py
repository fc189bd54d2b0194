from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.projects import services
from apps.projects.cli import user_or_error, validation_line


class Command(BaseCommand):
    help = "Create a project owned by a user; prints the project's slug."
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner", required=True, help="username or e-mail of the owner")
        parser.add_argument("--description", default="")

    def handle(self, *args, **options):
        owner = user_or_error(options["owner"])
        for field in ("slug", "name", "description"):
            if "\x00" in options[field]:
                raise CommandError(f"--{field}: contains a NUL character")
        try:
            project = services.project_create(user=owner, name=options["name"],
                                              slug=options["slug"],
                                              description=options["description"])
        except ValidationError as exc:
            raise CommandError(validation_line(exc)) from None
        if project.slug != options["slug"]:
            self.stderr.write(f"note: the slug is '{project.slug}'")
        self.stdout.write(project.slug)
