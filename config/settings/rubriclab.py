"""Product settings: defaults a project can override, and limits that protect the server."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_optional_float, env_str

# Export gate defaults (DESIGN.md "Statistics"); each project can set its own, within [0, 1].
GATE_MIN_N = env_int("GATE_MIN_N", 50, minimum=1)
GATE_MIN_KAPPA_LOWER = env_float("GATE_MIN_KAPPA_LOWER", 0.4)
GATE_MIN_KAPPA = env_float("GATE_MIN_KAPPA", 0.6)
GATE_MIN_HUMAN_ALPHA = env_float("GATE_MIN_HUMAN_ALPHA", 0.4)
GATE_PROBE_MAX_FPR = env_float("GATE_PROBE_MAX_FPR", 0.10)
for _name in ("GATE_MIN_KAPPA_LOWER", "GATE_MIN_KAPPA", "GATE_MIN_HUMAN_ALPHA",
              "GATE_PROBE_MAX_FPR"):
    if not 0 <= globals()[_name] <= 1:
        raise ImproperlyConfigured(f"{_name}={globals()[_name]} must lie between 0 and 1")

# The locked development / test split of labelled items (docs/decisions/0014): the share of
# test items and the seed of the first draw of each rubric's split on a dataset.
CALIBRATION_TEST_SHARE = env_float("CALIBRATION_TEST_SHARE", 0.3, minimum=0.05)
if CALIBRATION_TEST_SHARE > 0.95:
    raise ImproperlyConfigured(f"CALIBRATION_TEST_SHARE={CALIBRATION_TEST_SHARE} must be at "
                               "most 0.95")
CALIBRATION_SPLIT_SEED = env_int("CALIBRATION_SPLIT_SEED", 0, minimum=0)

# Denial-of-wallet guards. A run that would queue more model calls than its project's cap is
# refused; owners set the cap, but never above the operator's MAX_QUEUED_CALLS_LIMIT.
MAX_QUEUED_CALLS_LIMIT = env_int("MAX_QUEUED_CALLS_LIMIT", 1_000_000, minimum=1)
MAX_QUEUED_CALLS_DEFAULT = env_int("MAX_QUEUED_CALLS_DEFAULT", 200_000, minimum=1)
if MAX_QUEUED_CALLS_DEFAULT > MAX_QUEUED_CALLS_LIMIT:
    raise ImproperlyConfigured(
        f"MAX_QUEUED_CALLS_DEFAULT={MAX_QUEUED_CALLS_DEFAULT} is above "
        f"MAX_QUEUED_CALLS_LIMIT={MAX_QUEUED_CALLS_LIMIT}"
    )
# Optional: the most (known) model cost one project may run up in a calendar month, in USD.
# Unset means no ceiling. A project's owners may set a lower one, never a higher one.
MONTHLY_COST_LIMIT_USD = env_optional_float("MONTHLY_COST_LIMIT_USD", minimum=0.0)

# Which api_base URLs runs may name (apps/judging/egress.py): URL prefixes set by the operator.
# Listed bases get RUBRICLAB_API_KEY; unlisted ones get no key, and never an address that is
# loopback, link-local or a cloud metadata service. ALLOW_UNLISTED_API_BASES=false refuses every
# base that is not listed.
ALLOWED_API_BASES = env_list("ALLOWED_API_BASES", [])
for _base in ALLOWED_API_BASES:
    if not _base.startswith(("http://", "https://")):
        raise ImproperlyConfigured(
            f"ALLOWED_API_BASES: {_base!r} is not an http:// or https:// URL prefix"
        )
ALLOW_UNLISTED_API_BASES = env_bool("ALLOW_UNLISTED_API_BASES", True)

# Import errors shown to the user are capped; the import still fails as a whole.
IMPORT_MAX_ERRORS = env_int("IMPORT_MAX_ERRORS", 50, minimum=1)
# Closed by default: owners invite people (apps/projects/invitations.py).
ALLOW_SIGNUP = env_bool("ALLOW_SIGNUP", False)
INVITATION_TTL_DAYS = env_int("INVITATION_TTL_DAYS", 7, minimum=1)
# Who may create projects (each project can spend the server's provider keys up to its caps):
# "owners" (staff, and people who already own a project: an invited labeller or editor cannot
# open a budget of their own), "staff" (staff users only) or "anyone" signed in.
PROJECT_CREATORS = env_str("PROJECT_CREATORS", "owners").strip().lower()
if PROJECT_CREATORS not in ("owners", "staff", "anyone"):
    raise ImproperlyConfigured(
        f"PROJECT_CREATORS={PROJECT_CREATORS!r} is not one of owners, staff, anyone")

# Uploads (config/uploads.py). A dataset file may be DATASET_MAX_UPLOAD_MB (base.py); any other
# request body REQUEST_MAX_BODY_MB. One line of a dataset file may be IMPORT_MAX_LINE_MB; a file
# larger than IMPORT_INLINE_MAX_MB is imported by a worker in the background, with progress.
REQUEST_MAX_BODY_MB = env_int("REQUEST_MAX_BODY_MB", 10, minimum=1)
IMPORT_MAX_LINE_MB = env_int("IMPORT_MAX_LINE_MB", 10, minimum=1)
IMPORT_INLINE_MAX_MB = env_int("IMPORT_INLINE_MAX_MB", 2, minimum=0)

# Judge runs (see docs/decisions/0002-judge-runs.md).
# A batch holds about concurrency x JUDGE_BATCH_WAVES calls: big enough that the pipeline of
# in-flight calls rarely drains (each batch ends with one drain), small enough to finish well
# inside the task's soft time limit (20 waves of a 30 s provider: 600 s < 900 s).
JUDGE_BATCH_WAVES = env_int("JUDGE_BATCH_WAVES", 20, minimum=1)
JUDGE_BATCH_MIN_CALLS = env_int("JUDGE_BATCH_MIN_CALLS", 50, minimum=1)
# Batches of one run on the broker at once; finished batches pull the next ones.
JUDGE_DISPATCH_WINDOW = env_int("JUDGE_DISPATCH_WINDOW", 8, minimum=1)
# A batch whose worker has not beaten its heart for this long is sent again.
JUDGE_BATCH_STALE_S = env_int("JUDGE_BATCH_STALE_S", 60, minimum=2)
JUDGE_HEARTBEAT_S = env_float("JUDGE_HEARTBEAT_S", 2.0, minimum=0.1)
JUDGE_MAX_ATTEMPTS = env_int("JUDGE_MAX_ATTEMPTS", 5, minimum=1)
JUDGE_BACKOFF_BASE_S = env_float("JUDGE_BACKOFF_BASE_S", 0.5, minimum=0.0)
JUDGE_BACKOFF_CAP_S = env_float("JUDGE_BACKOFF_CAP_S", 30.0, minimum=0.0)
# A run is cut into about this many batches (never fewer calls than JUDGE_BATCH_MIN_CALLS, never
# more than concurrency x JUDGE_BATCH_WAVES), so every listening worker finds work; a worker's
# session takes the next batch while its calls are in flight (docs/decisions/0010).
JUDGE_BATCH_SPLIT = env_int("JUDGE_BATCH_SPLIT", 16, minimum=1)
# A worker's share of a run's concurrency is leased: a dead worker's slots come back this late.
JUDGE_SLOT_LEASE_S = env_float("JUDGE_SLOT_LEASE_S", 10.0, minimum=1.0)
# A session stops taking new batches after this long (the task's soft time limit is 900 s).
JUDGE_SESSION_MAX_S = env_int("JUDGE_SESSION_MAX_S", 300, minimum=1)
# Answers up to this many characters are kept in the call cache, whole; longer ones are not
# cached (asked again on a re-run) rather than cut into something that no longer parses.
JUDGE_CACHE_MAX_CHARS = env_int("JUDGE_CACHE_MAX_CHARS", 4_000_000, minimum=0)
# Requests per minute per model, shared by every worker of the deployment (providers limit by
# account): "600" for every model, or "openai/gpt-4.1-mini=500,anthropic/claude-x=50". Empty: none.


def _model_rpm(parts: list[str]) -> dict[str, int]:
    limits: dict[str, int] = {}
    for part in parts:
        model, _, number = part.rpartition("=") if "=" in part else ("*", "", part)
        if not number.isdigit() or int(number) < 1 or not model:
            raise ImproperlyConfigured(
                f"JUDGE_MODEL_RPM: {part!r} is not MODEL=N or N (a whole number of requests "
                "per minute, at least 1)")
        limits[model] = int(number)
    return limits


JUDGE_MODEL_RPM = _model_rpm(env_list("JUDGE_MODEL_RPM", []))
# How a finished run is named (docs/decisions/0006): more than this share of its calls failed or
# invalid and it is "failed", not "completed with failures"; the export gate refuses such a run.
JUDGE_RUN_MAX_FAILED_SHARE = env_float("JUDGE_RUN_MAX_FAILED_SHARE", 0.2, minimum=0.0)
if JUDGE_RUN_MAX_FAILED_SHARE > 1:
    raise ImproperlyConfigured(f"JUDGE_RUN_MAX_FAILED_SHARE={JUDGE_RUN_MAX_FAILED_SHARE} must "
                               "lie between 0 and 1")
# A batch delivered this many times without progress has its pending calls marked failed.
JUDGE_BATCH_MAX_DELIVERIES = env_int("JUDGE_BATCH_MAX_DELIVERIES", 3, minimum=1)
