"""Headless set-up: create a project, read and change its settings, add members (owner tokens).
The same services as the pages and the commands (project_create, project_settings,
member_add); the operator's ceilings apply here too."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from ninja import Router, Schema, Status

from apps.api.auth import project_access
from apps.projects import services
from apps.projects.access import CANNOT_CREATE, Need, can_create_projects
from apps.projects.models import Membership, Role

router = Router()


class Error(Schema):
    detail: str


class FieldErrors(Schema):
    detail: str
    errors: dict[str, list[str]]


class SettingsOut(Schema):
    slug: str
    name: str
    description: str
    gate_min_n: int
    gate_min_kappa_lower: float
    gate_min_kappa: float
    gate_min_human_alpha: float
    max_queued_calls: int
    monthly_cost_limit_usd: float | None
    queued_calls_cap_in_force: int
    monthly_cost_cap_in_force: float | None


class SettingsIn(Schema):
    name: str | None = None
    description: str | None = None
    gate_min_n: int | None = None
    gate_min_kappa_lower: float | None = None
    gate_min_kappa: float | None = None
    gate_min_human_alpha: float | None = None
    max_queued_calls: int | None = None
    monthly_cost_limit_usd: float | None = None


class ProjectIn(Schema):
    slug: str
    name: str
    description: str = ""


class ProjectOut(Schema):
    slug: str
    name: str
    token: str  # an owner token for the new project, shown only now


class MemberIn(Schema):
    user: str
    role: str


class MemberOut(Schema):
    username: str
    role: str


def _settings_out(project) -> SettingsOut:
    limit = project.monthly_cost_limit_usd
    return SettingsOut(
        slug=project.slug, name=project.name, description=project.description,
        gate_min_n=project.gate_min_n, gate_min_kappa_lower=project.gate_min_kappa_lower,
        gate_min_kappa=project.gate_min_kappa, gate_min_human_alpha=project.gate_min_human_alpha,
        max_queued_calls=project.max_queued_calls,
        monthly_cost_limit_usd=float(limit) if limit is not None else None,
        queued_calls_cap_in_force=project.queued_calls_cap(),
        monthly_cost_cap_in_force=project.monthly_cost_cap(),
    )


def _invalid(exc: ValidationError):
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    return Status(422, FieldErrors(detail="Nothing changed: " + "; ".join(
        f"{k}: {' '.join(v)}" for k, v in errors.items()), errors=errors))


@router.post("projects", response={201: ProjectOut, 401: Error, 403: Error, 422: FieldErrors},
             summary="Create a project (its owner: the caller)")
def create_project(request, payload: ProjectIn):
    """With a token, its holder must own the token's project. The answer carries an owner token
    for the new project, for the pipeline's next steps."""
    token = getattr(request, "api_token", None)
    if token is not None and not Membership.objects.filter(
            project=token.project, user=request.user, role=Role.OWNER).exists():
        raise PermissionDenied("Only an owner's token may create projects.")
    if not can_create_projects(request.user):
        raise PermissionDenied(CANNOT_CREATE)
    try:
        project = services.project_create(user=request.user, name=payload.name,
                                          slug=payload.slug, description=payload.description)
    except ValidationError as exc:
        return _invalid(exc)
    _, raw = services.token_create(user=request.user, project=project, name="created with project")
    return Status(201, ProjectOut(slug=project.slug, name=project.name, token=raw))


@router.get("projects/{slug}/settings", response={200: SettingsOut, 403: Error, 404: Error},
            summary="A project's settings (gate thresholds, caps)")
def get_settings(request, slug: str):
    return _settings_out(project_access(request, slug, need=Need.READ).project)


@router.patch("projects/{slug}/settings",
              response={200: SettingsOut, 403: Error, 404: Error, 422: FieldErrors},
              summary="Change a project's settings (owners)")
def patch_settings(request, slug: str, payload: SettingsIn):
    """Only the fields sent change, all validated together: gate thresholds in [0, 1], caps
    within the operator's MAX_QUEUED_CALLS_LIMIT and MONTHLY_COST_LIMIT_USD."""
    access = project_access(request, slug, need=Need.OWN)
    changes = payload.dict(exclude_unset=True)
    try:
        services.project_update_settings(project=access.project, **changes)
    except ValidationError as exc:
        return _invalid(exc)
    return _settings_out(access.project)


@router.post("projects/{slug}/members",
             response={201: MemberOut, 403: Error, 404: Error, 422: FieldErrors},
             summary="Add a user with an account to the project (owners)")
def add_member(request, slug: str, payload: MemberIn):
    access = project_access(request, slug, need=Need.OWN)
    try:
        membership = services.member_add(project=access.project, identifier=payload.user,
                                         role=payload.role)
    except ValidationError as exc:
        return _invalid(exc)
    return Status(201, MemberOut(username=membership.user.username, role=membership.role))
