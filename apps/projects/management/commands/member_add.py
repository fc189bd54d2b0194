from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.projects import services
from apps.projects.cli import project_or_error, validation_line
from apps.projects.models import Role


class Command(BaseCommand):
    help = "Add a user (with an account) to a project with a role."
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--user", required=True, help="username or e-mail")
        parser.add_argument("--role", required=True, choices=Role.values)

    def handle(self, *args, **options):
        project = project_or_error(options["project"])
        try:
            membership = services.member_add(project=project, identifier=options["user"],
                                             role=options["role"])
        except ValidationError as exc:
            raise CommandError(validation_line(exc)) from None
        self.stdout.write(f"{membership.user.username} {membership.role} {project.slug}")
