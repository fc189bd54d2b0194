from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Load the demo project from the bundled real data (idempotent)."
    # No system checks: they import the whole URLconf (numpy, scipy, scikit-learn) for nothing.
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--login", default=None,
            help="USER:PASSWORD of a demo owner, created if missing (default demo:demo)",
        )
        parser.add_argument("--no-login", action="store_true", help="create no demo user")

    def handle(self, *args, **options):
        from apps.intake.demo import load_demo

        login = None
        if options["no_login"] and options["login"] is not None:
            raise CommandError("--login and --no-login contradict each other: give one")
        if not options["no_login"]:
            username, sep, password = (options["login"] or "demo:demo").partition(":")
            if not sep or not username or not password:
                raise CommandError("--login must be USER:PASSWORD")
            login = (username, password)
        try:
            result = load_demo(login=login)
        except (RuntimeError, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from None
        for line in result.created:
            self.stdout.write(f"created {line}")
        for line in result.skipped:
            self.stdout.write(f"exists  {line}")
        self.stdout.write(f"demo project: /p/{result.project.slug}/")
        if result.login is not None:
            self.stdout.write(f"demo login: {result.login[0]} / {result.login[1]}")
        elif login is not None:
            self.stdout.write(f"demo login: {login[0]} (existing user; password unchanged)")
