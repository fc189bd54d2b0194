from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.projects import services
from apps.projects.cli import project_or_error, user_or_error, validation_line
from apps.projects.models import Membership


class Command(BaseCommand):
    help = ("Create an API token for a member of a project; prints the token (shown only "
            "now, only its hash is stored).")
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--user", required=True, help="username or e-mail of a member")
        parser.add_argument("--name", required=True, help="what will use it, e.g. 'nightly CI'")

    def handle(self, *args, **options):
        project = project_or_error(options["project"])
        user = user_or_error(options["user"])
        if not Membership.objects.filter(project=project, user=user).exists():
            raise CommandError(f"{user.username} is not a member of '{project.slug}'")
        try:
            _, raw = services.token_create(user=user, project=project, name=options["name"])
        except ValidationError as exc:
            raise CommandError(validation_line(exc)) from None
        self.stdout.write(raw)
