"""Helpers shared by management commands: resolve a project by slug with a one-line error."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from apps.projects.models import Project


def project_or_error(slug: str) -> Project:
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise CommandError(f"no project with slug '{slug}'")
    return project


def user_or_error(identifier: str):
    User = get_user_model()
    user = (User.objects.filter(username=identifier).first()
            or User.objects.filter(email__iexact=identifier).first())
    if user is None or not user.is_active:
        raise CommandError(f"no active user '{identifier}' (create one with createsuperuser, "
                           "or invite them from a project's Members page)")
    return user


def validation_line(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{field if field != '__all__' else 'settings'}: {' '.join(msgs)}"
                         for field, msgs in exc.message_dict.items())
    return " ".join(exc.messages)


class RubricVersionFlag:
    """Mixin for commands whose --version N means a rubric version (the command contracts in
    DESIGN.md), not Django's --version."""

    def add_base_argument(self, parser, *args, **kwargs):
        if "--version" in args:
            return
        super().add_base_argument(parser, *args, **kwargs)
