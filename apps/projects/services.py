"""Writes for projects, memberships and API tokens (STYLE.md 3)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from apps.projects.models import ApiToken, Membership, Project, Role, hash_token
from apps.projects.text import text_problem


def project_create(*, user, name: str, slug: str = "", description: str = "") -> Project:
    for field, value in (("name", name), ("slug", slug), ("description", description)):
        problem = text_problem(value or "")
        if problem:
            raise ValidationError({field: f"The text {problem}."})
    slug = slugify(slug or name)[:60]
    if not slug:
        raise ValidationError({"slug": "A project needs a name or slug with letters or digits."})
    if Project.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"The slug '{slug}' is taken; choose another."})
    with transaction.atomic():
        project = Project.objects.create(
            slug=slug, name=name.strip() or slug, description=description, created_by=user
        )
        Membership.objects.create(project=project, user=user, role=Role.OWNER)
    return project


SETTINGS_FIELDS = (
    "name", "description", "gate_min_n", "gate_min_kappa_lower", "gate_min_kappa",
    "gate_min_human_alpha", "max_queued_calls", "monthly_cost_limit_usd",
    "gate_probe_max_fpr", "gate_probes_accepted", "gate_probes_required",
)


def project_update_settings(*, project: Project, **changes) -> Project:
    """Change any of SETTINGS_FIELDS; all are validated together (ranges, the operator's
    ceilings) and nothing is saved when one is wrong. The page, `project_settings` and the API
    all come here."""
    unknown = sorted(set(changes) - set(SETTINGS_FIELDS))
    if unknown:
        raise ValidationError({"__all__": f"Unknown setting(s): {', '.join(unknown)}."})
    candidate = Project.objects.get(pk=project.pk)
    for field, value in changes.items():
        if field in ("gate_min_human_alpha", "gate_probe_max_fpr") and value is None:
            continue  # the form leaves it out when not shown
        if value is None and not Project._meta.get_field(field).null:
            # full_clean skips empty values of blank=True fields: say it here, not as a 500.
            raise ValidationError({field: "Give a value; this setting cannot be empty (null)."})
        problem = text_problem(value) if isinstance(value, str) else None
        if problem:
            raise ValidationError({field: f"The text {problem}."})
        setattr(candidate, field, value)
    candidate.full_clean()
    candidate.save()
    for field in SETTINGS_FIELDS:
        setattr(project, field, getattr(candidate, field))
    return project


def _find_user(identifier: str):
    User = get_user_model()
    identifier = identifier.strip()
    if not identifier:
        raise ValidationError({"user": "Give a username or an e-mail address."})
    if text_problem(identifier):
        raise ValidationError({"user": f"No user '{identifier!a}'."})
    found = User.objects.filter(Q(username=identifier) | Q(email__iexact=identifier))
    matches = list(found.filter(is_active=True)[:2])
    if not matches:
        raise ValidationError({"user": f"No user '{identifier}'. They need an account first."})
    if len(matches) > 1:
        raise ValidationError({"user": f"'{identifier}' matches several users; use the username."})
    return matches[0]


def member_add(*, project: Project, identifier: str, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role '{role}'."})
    user = _find_user(identifier)
    duplicate = ValidationError({"user": f"{user.username} is already a member."})
    if Membership.objects.filter(project=project, user=user).exists():
        raise duplicate
    try:
        with transaction.atomic():
            return Membership.objects.create(project=project, user=user, role=role)
    except IntegrityError:  # added by someone else between the check and the insert
        raise duplicate from None


def _lock_members(project: Project) -> None:
    # Two owners demoting each other at the same moment would each see the other as the
    # remaining owner and leave none. Locking the project row makes member changes of one
    # project take turns (SQLite takes turns anyway: one writer at a time).
    Project.objects.select_for_update().filter(pk=project.pk).first()


def _ensure_owner_remains(project: Project, membership: Membership) -> None:
    if membership.role != Role.OWNER:
        return
    others = (
        Membership.objects.filter(project=project, role=Role.OWNER)
        .exclude(pk=membership.pk)
        .exists()
    )
    if not others:
        raise ValidationError(
            {"role": "A project needs at least one owner: make someone else owner first."}
        )


@transaction.atomic
def member_set_role(*, project: Project, membership_id: int, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role '{role}'."})
    _lock_members(project)
    membership = Membership.objects.get(project=project, pk=membership_id)
    if role != Role.OWNER:
        _ensure_owner_remains(project, membership)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def member_remove(*, project: Project, membership_id: int) -> None:
    _lock_members(project)
    membership = Membership.objects.get(project=project, pk=membership_id)
    _ensure_owner_remains(project, membership)
    # Their tokens go too: a token must not come back to life if they are added again later.
    ApiToken.objects.filter(project=project, user_id=membership.user_id).delete()
    membership.delete()


def token_create(*, user, project: Project, name: str) -> tuple[ApiToken, str]:
    """Create a token and return it with its raw value, which is never stored."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Name the token after the script that will use it."})
    problem = text_problem(name)
    if problem:
        raise ValidationError({"name": f"The name {problem}."})
    raw, prefix, key_hash = ApiToken.generate()
    token = ApiToken.objects.create(
        user=user, project=project, name=name[:80], prefix=prefix, key_hash=key_hash
    )
    return token, raw


def token_revoke(*, user, project: Project, token_id: int) -> None:
    deleted, _ = ApiToken.objects.filter(user=user, project=project, pk=token_id).delete()
    if not deleted:
        raise ApiToken.DoesNotExist


def token_authenticate(raw: str) -> ApiToken | None:
    """Return the live token for a raw bearer value, or None. The owner must still be a member."""
    token = (
        ApiToken.objects.select_related("user", "project")
        .filter(key_hash=hash_token(raw))
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    if not Membership.objects.filter(project=token.project, user=token.user).exists():
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token
