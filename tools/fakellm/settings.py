"""Runtime-tunable behaviour of the fake server, shared by the CLI and ``POST /_control``."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

# Fault shares, in the order they are stacked on the [0, 1) interval of one random draw
# (see ``Settings.pick_fault``). Shares are exclusive: 0.5 of 429 plus 0.5 of 500 fails everything.
FAULT_KINDS: tuple[str, ...] = (
    "429",
    "500",
    "hang",
    "close",
    "malformed",
    "fenced",
    "trailing_comma",
    # Poison answers (issue 11): a rationale holding an escaped (\u0000) or a raw NUL, a
    # value that is an integer of 5,000 digits, the verdict object wrapped in an array.
    "nul_escaped",
    "nul_raw",
    "huge_int",
    "array",
)


@dataclass(frozen=True)
class Settings:
    """All knobs. Frozen: an update builds a new object, so a request never sees a half-update."""

    latency_ms: float = 0.0  # mean added delay for requests that pass validation (not 429s)
    jitter_ms: float = 0.0  # uniform +- around latency_ms, clamped at 0
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_hang: float = 0.0
    rate_close: float = 0.0
    rate_malformed: float = 0.0
    rate_fenced: float = 0.0
    rate_trailing_comma: float = 0.0
    rate_nul_escaped: float = 0.0
    rate_nul_raw: float = 0.0
    rate_huge_int: float = 0.0
    rate_array: float = 0.0
    # Per-prompt refusals: the same prompt is always refused (a provider's content filter is a
    # property of the prompt, not of the draw), chosen by a hash of the seed and the prompt.
    content_filter_share: float = 0.0
    # Prompts over this many tokens (count_tokens) get the context-window 400; None: no limit.
    max_context_tokens: int | None = None
    retry_after_s: float = 1.0  # value of the Retry-After header on 429s
    hang_s: float = 3600.0  # how long a hung request sleeps before answering (late) anyway
    seed: int | None = None  # set => fault/jitter draws are reproducible in arrival order
    fail_first_n: int = 0  # first N attempts of each distinct body answer 500
    storm_s: float | None = None  # set => rate_429 only applies this long after it was set
    api_key: str | None = None  # set => Authorization: Bearer <api_key> is required
    unknown_models: list[str] = field(default_factory=lambda: ["does-not-exist"])
    models: list[str] = field(default_factory=lambda: ["fake-judge"])  # listed by /v1/models
    # "length": verdicts follow word thresholds stated in the anchors, and rewrite requests
    # are answered with fitted thresholds (tools/fakellm/verdicts.py, scripted mode);
    # "gullible": the same, but any response containing "step by step" gets the top level.
    script: str | None = None
    # > 0: every verdict's rationale is padded to this many characters (a very long answer).
    rationale_pad: int = 0

    def updated(self, changes: dict[str, Any]) -> Settings:
        """Validated copy with ``changes`` applied; raises ValueError on unknown keys/bad values."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        clean = {name: _coerce(name, value) for name, value in changes.items()}
        return dataclasses.replace(self, **clean)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fault_shares(self, storm_active: bool) -> list[tuple[str, float]]:
        """(kind, share) pairs; the 429 share is zeroed outside an active storm window."""
        shares = [(kind, float(getattr(self, "rate_" + kind))) for kind in FAULT_KINDS]
        if self.storm_s is not None and not storm_active:
            shares[0] = ("429", 0.0)
        return shares

    def refuses_prompt(self, text: str) -> bool:
        """Whether the content filter refuses this prompt: the same answer for the same prompt
        and seed on every request (a resume meets the same refusals)."""
        if self.content_filter_share <= 0:
            return False
        digest = hashlib.sha256(f"{self.seed or 0}:{text}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.content_filter_share

    def pick_fault(self, draw: float, storm_active: bool) -> str | None:
        """Map one uniform draw in [0, 1) to a fault kind (or None = answer normally)."""
        edge = 0.0
        for kind, share in self.fault_shares(storm_active):
            edge += share
            if draw < edge:
                return kind
        return None


_FLOATS = {"latency_ms", "jitter_ms", "retry_after_s", "hang_s"}
_RATES = {"rate_" + kind for kind in FAULT_KINDS} | {"content_filter_share"}
_LISTS = {"unknown_models", "models"}


def _coerce(name: str, value: Any) -> Any:
    """Type-check one setting. Accepts strings for numbers so CLI and JSON share the path."""
    if name in _FLOATS or name in _RATES:
        number = _number(name, value)
        if number < 0:
            raise ValueError(f"{name} must be >= 0")
        if name in _RATES and number > 1:
            raise ValueError(f"{name} is a share and must be in [0, 1]")
        return number
    if name == "max_context_tokens":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("max_context_tokens must be an integer or null")
        try:
            number = int(value)
        except ValueError as exc:
            raise ValueError("max_context_tokens must be an integer or null") from exc
        if number < 1:
            raise ValueError("max_context_tokens must be >= 1")
        return number
    if name == "storm_s":
        return None if value is None else _coerce("latency_ms", value)
    if name in ("seed", "fail_first_n", "rationale_pad"):
        if value is None and name == "seed":
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"{name} must be an integer")
        try:
            number = int(value)
        except ValueError as exc:
            raise ValueError(f"{name} must be an integer") from exc
        if name in ("fail_first_n", "rationale_pad") and number < 0:
            raise ValueError(f"{name} must be >= 0")
        return number
    if name == "api_key":
        if value is not None and not isinstance(value, str):
            raise ValueError("api_key must be a string or null")
        return value or None
    if name == "script":
        if value in (None, ""):
            return None
        if value not in ("length", "gullible"):
            raise ValueError("script must be null or one of: length, gullible")
        return value
    if name in _LISTS:
        if isinstance(value, str):  # CLI form: comma separated
            return [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{name} must be a list of strings")
        return list(value)
    raise ValueError(f"unhandled setting {name}")  # pragma: no cover - guarded by updated()


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number") from exc
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite")
    return number
