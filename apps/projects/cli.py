"""Helpers shared by management commands: resolve a project by slug with a one-line error."""

from __future__ import annotations

from django.core.management.base import CommandError

from apps.projects.models import Project


def project_or_error(slug: str) -> Project:
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise CommandError(f"no project with slug '{slug}'")
    return project


class RubricVersionFlag:
    """Mixin for commands whose --version N means a rubric version (the command contracts in
    DESIGN.md), not Django's --version."""

    def add_base_argument(self, parser, *args, **kwargs):
        if "--version" in args:
            return
        super().add_base_argument(parser, *args, **kwargs)
