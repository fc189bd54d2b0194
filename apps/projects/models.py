from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models


def _gate_min_n() -> int:
    return settings.GATE_MIN_N


def _gate_min_kappa_lower() -> float:
    return settings.GATE_MIN_KAPPA_LOWER


def _gate_min_kappa() -> float:
    return settings.GATE_MIN_KAPPA


def _gate_min_human_alpha() -> float:
    return settings.GATE_MIN_HUMAN_ALPHA


def _max_queued_calls() -> int:
    return settings.MAX_QUEUED_CALLS_DEFAULT


class Project(models.Model):
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    is_demo = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Export gate thresholds (DESIGN.md "Statistics"); defaults come from settings.
    gate_min_n = models.PositiveIntegerField(default=_gate_min_n)
    gate_min_kappa_lower = models.FloatField(default=_gate_min_kappa_lower)
    gate_min_kappa = models.FloatField(default=_gate_min_kappa)
    # Below this, humans disagree too much among themselves to calibrate a judge against them.
    gate_min_human_alpha = models.FloatField(default=_gate_min_human_alpha)
    max_queued_calls = models.PositiveIntegerField(default=_max_queued_calls)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    EDITOR = "editor", "Editor"
    LABELLER = "labeller", "Labeller"


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique"),
        ]
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


TOKEN_PREFIX = "rl_"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token for scripts, bound to one user in one project.

    Only the SHA-256 of the token is stored; the token itself is shown once at creation.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def generate() -> tuple[str, str, str]:
        """Return (raw token, display prefix, hash)."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        return raw, raw[: len(TOKEN_PREFIX) + 6], hash_token(raw)
