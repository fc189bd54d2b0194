from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


def _finite(value) -> None:
    # NaN passes both range checks (every comparison with NaN is false): refused here.
    if value != value or value in (float("inf"), float("-inf")):
        raise ValidationError("Give a number from 0 to 1.")


# Agreement thresholds of the gate: kappa and alpha below 0 mean "worse than chance", so a
# threshold below 0 lets anything through; above 1 nothing passes.
_UNIT = [_finite, MinValueValidator(0.0), MaxValueValidator(1.0)]


def _gate_min_n() -> int:
    return settings.GATE_MIN_N


def _gate_min_kappa_lower() -> float:
    return settings.GATE_MIN_KAPPA_LOWER


def _gate_min_kappa() -> float:
    return settings.GATE_MIN_KAPPA


def _gate_min_human_alpha() -> float:
    return settings.GATE_MIN_HUMAN_ALPHA


def _gate_probe_max_fpr() -> float:
    return settings.GATE_PROBE_MAX_FPR


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
    # Bounded here, not only by the database's integer range (SQLite has none to speak of).
    gate_min_n = models.PositiveIntegerField(
        default=_gate_min_n, validators=[MinValueValidator(1), MaxValueValidator(1_000_000)])
    gate_min_kappa_lower = models.FloatField(default=_gate_min_kappa_lower, validators=_UNIT)
    gate_min_kappa = models.FloatField(default=_gate_min_kappa, validators=_UNIT)
    # Below this, humans disagree too much among themselves to calibrate a judge against them.
    gate_min_human_alpha = models.FloatField(default=_gate_min_human_alpha, validators=_UNIT)
    # Reward-hacking probes (apps/probes): the upper end of every gated probe's 95% interval
    # of the false-positive rate must be at most this; the named probes are accepted as out of
    # scope (comma-separated); `gate_probes_required`: no probe run of the judge fails the gate.
    gate_probe_max_fpr = models.FloatField(default=_gate_probe_max_fpr, validators=_UNIT)
    gate_probes_accepted = models.CharField(max_length=500, blank=True, default="")
    gate_probes_required = models.BooleanField(default=False)
    # Spend guards. Owners set them, within the operator's ceilings (Project.clean).
    max_queued_calls = models.PositiveIntegerField(default=_max_queued_calls,
                                                   validators=[MinValueValidator(1)])
    monthly_cost_limit_usd = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(0)],
        help_text="Most known model cost per calendar month, in USD; empty: the server's ceiling.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The operator's ceilings, which no owner can raise (settings MAX_QUEUED_CALLS_LIMIT,
        MONTHLY_COST_LIMIT_USD)."""
        errors = {}
        limit = settings.MAX_QUEUED_CALLS_LIMIT
        if self.max_queued_calls is not None and self.max_queued_calls > limit:
            errors["max_queued_calls"] = (
                f"At most {limit:,}: the server's ceiling (MAX_QUEUED_CALLS_LIMIT).")
        ceiling = settings.MONTHLY_COST_LIMIT_USD
        if (ceiling is not None and self.monthly_cost_limit_usd is not None
                and float(self.monthly_cost_limit_usd) > ceiling):
            errors["monthly_cost_limit_usd"] = (
                f"At most ${ceiling:,.2f}: the server's ceiling (MONTHLY_COST_LIMIT_USD).")
        if self.gate_probes_accepted:
            from apps.probes.generate import PROBES

            unknown = [n for n in self.accepted_probes() if n not in PROBES]
            if unknown:
                errors["gate_probes_accepted"] = (
                    f"Unknown probe(s): {', '.join(unknown)}; probes: {', '.join(PROBES)}.")
        if errors:
            raise ValidationError(errors)

    def accepted_probes(self) -> list[str]:
        return [n.strip() for n in self.gate_probes_accepted.split(",") if n.strip()]

    def queued_calls_cap(self) -> int:
        """The cap in force: the project's, or the operator's ceiling if that is lower (a value
        stored before the ceiling was lowered does not outlive it)."""
        return min(self.max_queued_calls, settings.MAX_QUEUED_CALLS_LIMIT)

    def monthly_cost_cap(self) -> float | None:
        """The monthly cost ceiling in force, in USD, or None for none."""
        caps = [float(c) for c in (self.monthly_cost_limit_usd, settings.MONTHLY_COST_LIMIT_USD)
                if c is not None]
        return min(caps) if caps else None


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


class Invitation(models.Model):
    """An owner's invitation of an e-mail address into a project with a role. The link carries
    a random token, of which only the SHA-256 is stored; it works once, until `expires_at`."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} to {self.project} ({self.role})"
