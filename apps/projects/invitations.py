"""Invitations: how new people get in while sign-up is closed (issue 16 §1, issue 13 §1).

1. An owner invites an e-mail address with a role (`invitation_create`). The link holds a random
   token; only its SHA-256 is stored. The link is e-mailed through Django's mail settings (the
   console backend unless EMAIL_BACKEND says otherwise) and shown to the owner once, to pass on
   by hand.
2. Whoever opens the link sets a username and password (or, signed in already, simply joins):
   `invitation_accept` locks the invitation's row, so the link works exactly once, and refuses
   it after INVITATION_TTL_DAYS. The new member lands on the project's home page, which lists
   the labelling work assigned to them.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.projects.models import Invitation, Membership, Project, Role, hash_token
from apps.projects.text import text_problem

TOKEN_BYTES = 32


def invitation_create(*, project: Project, email: str, role: str, invited_by) -> tuple[
        Invitation, str]:
    """Create an invitation and return it with the raw token (never stored)."""
    email = (email or "").strip()
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role '{role}'."})
    if not email or text_problem(email):
        raise ValidationError({"email": "Give the e-mail address to invite."})
    if Membership.objects.filter(project=project, user__email__iexact=email).exists():
        raise ValidationError({"email": f"{email} is a member already."})
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    invitation = Invitation.objects.create(
        project=project, email=email, role=role, token_hash=hash_token(raw),
        invited_by=invited_by,
        expires_at=timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    return invitation, raw


def invitation_send(*, invitation: Invitation, link: str) -> None:
    who = invitation.invited_by.username if invitation.invited_by else "An owner"
    send_mail(
        subject=f"You are invited to {invitation.project.name} on RubricLab",
        message=(f"{who} invites you to the project '{invitation.project.name}' as "
                 f"{invitation.get_role_display().lower()}.\n\nOpen this link to set your "
                 f"password and join (it works once, until "
                 f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC):\n\n{link}\n"),
        from_email=None, recipient_list=[invitation.email], fail_silently=False,
    )


def invitation_for_token(raw: str) -> Invitation | None:
    """The open invitation for a raw token, or None (unknown, used or expired)."""
    invitation = (Invitation.objects.select_related("project", "invited_by")
                  .filter(token_hash=hash_token(raw or "")).first())
    if invitation is None or invitation.accepted_at is not None:
        return None
    if invitation.expires_at <= timezone.now():
        return None
    return invitation


def invitation_revoke(*, project: Project, invitation_id: int) -> None:
    deleted, _ = Invitation.objects.filter(project=project, pk=invitation_id,
                                           accepted_at__isnull=True).delete()
    if not deleted:
        raise Invitation.DoesNotExist


_GONE = "This invitation link is used, expired or revoked; ask the project's owner for a new one."


@transaction.atomic
def invitation_accept(*, raw: str, user=None, username: str = "", password: str = ""):
    """Join the project: as `user` if given, else as a new account with `username` and
    `password` (validated by the caller's form). Returns the membership."""
    found = invitation_for_token(raw)
    if found is None:
        raise ValidationError(_GONE)
    invitation = Invitation.objects.select_for_update().get(pk=found.pk)
    if invitation.accepted_at is not None:  # accepted by a request that held the lock first
        raise ValidationError(_GONE)
    if user is None:
        User = get_user_model()
        if User.objects.filter(username__iexact=username).exists():
            raise ValidationError({"username": "This username is taken; choose another."})
        try:
            with transaction.atomic():
                user = User.objects.create_user(username=username, email=invitation.email,
                                                password=password)
        except IntegrityError:
            raise ValidationError({"username": "This username is taken; choose another."}) \
                from None
    membership, created = Membership.objects.get_or_create(
        project=invitation.project, user=user, defaults={"role": invitation.role})
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership
