"""The one place that decides who may see and change a project's objects (STYLE.md 2).

Every view, partial, API endpoint and download loads its project through `get_project_for_user`
(or a per-aggregate loader built on it in the owning app). Outsiders get 404, so a project's
existence does not leak; members without the needed role get 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from django.core.exceptions import PermissionDenied
from django.http import Http404

from apps.projects.models import Membership, Project, Role


class Need(IntEnum):
    """What a request needs, from least to most."""

    MEMBER = 0  # any member: the project home, one's own labelling work, one's tokens
    READ = 1  # rubrics, datasets, runs, calibration: owners and editors
    WRITE = 2  # change rubrics, datasets, runs, exports: owners and editors
    OWN = 3  # members, project settings, delete: owners only


_ROLE_LEVEL = {Role.LABELLER: Need.MEMBER, Role.EDITOR: Need.WRITE, Role.OWNER: Need.OWN}


@dataclass(frozen=True)
class ProjectAccess:
    project: Project
    membership: Membership

    @property
    def role(self) -> str:
        return self.membership.role

    def allows(self, need: Need) -> bool:
        return _ROLE_LEVEL[Role(self.role)] >= need

    @property
    def can_read(self) -> bool:
        return self.allows(Need.READ)

    @property
    def can_write(self) -> bool:
        return self.allows(Need.WRITE)

    @property
    def is_owner(self) -> bool:
        return self.allows(Need.OWN)


def can_create_projects(user, *, memberships=None) -> bool:
    """PROJECT_CREATORS decides: a new project is a new budget on the server's provider keys.
    `memberships`, when the caller already holds the user's, saves the query."""
    from django.conf import settings

    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff or user.is_superuser or settings.PROJECT_CREATORS == "anyone":
        return True
    if settings.PROJECT_CREATORS == "staff":
        return False
    if memberships is not None:
        return any(m.role == Role.OWNER for m in memberships)
    return Membership.objects.filter(user=user, role=Role.OWNER).exists()


CANNOT_CREATE = ("Creating projects is reserved on this server (PROJECT_CREATORS); ask an "
                 "administrator or the owner of a project to invite you.")


def get_project_for_user(user, slug: str, *, need: Need = Need.READ) -> ProjectAccess:
    if user is None or not user.is_authenticated or "\x00" in slug:
        # A NUL cannot be in a slug, and PostgreSQL refuses it in a query (a 500, not a 404).
        raise Http404("No such project")
    membership = (
        Membership.objects.select_related("project")
        .filter(project__slug=slug, user=user)
        .first()
    )
    if membership is None:
        raise Http404("No such project")
    access = ProjectAccess(project=membership.project, membership=membership)
    if not access.allows(need):
        raise PermissionDenied("Your role in this project does not allow this.")
    return access
