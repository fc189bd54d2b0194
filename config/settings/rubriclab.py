"""Product settings: defaults a project can override, and limits that protect the server."""

from __future__ import annotations

from config.env import env_bool, env_float, env_int

# Export gate defaults (DESIGN.md "Statistics"); each project can set its own.
GATE_MIN_N = env_int("GATE_MIN_N", 50, minimum=1)
GATE_MIN_KAPPA_LOWER = env_float("GATE_MIN_KAPPA_LOWER", 0.4)
GATE_MIN_KAPPA = env_float("GATE_MIN_KAPPA", 0.6)

# Denial-of-wallet guard: a run that would queue more model calls than this is refused.
MAX_QUEUED_CALLS_DEFAULT = env_int("MAX_QUEUED_CALLS_DEFAULT", 200_000, minimum=1)

# Import errors shown to the user are capped; the import still fails as a whole.
IMPORT_MAX_ERRORS = env_int("IMPORT_MAX_ERRORS", 50, minimum=1)
ALLOW_SIGNUP = env_bool("ALLOW_SIGNUP", True)
