"""Product settings: defaults a project can override, and limits that protect the server."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int

# Export gate defaults (DESIGN.md "Statistics"); each project can set its own.
GATE_MIN_N = env_int("GATE_MIN_N", 50, minimum=1)
GATE_MIN_KAPPA_LOWER = env_float("GATE_MIN_KAPPA_LOWER", 0.4)
GATE_MIN_KAPPA = env_float("GATE_MIN_KAPPA", 0.6)
GATE_MIN_HUMAN_ALPHA = env_float("GATE_MIN_HUMAN_ALPHA", 0.4)

# The locked development / test split of labelled items (docs/decisions/0014): the share of
# test items and the seed of the first draw of each rubric's split on a dataset.
CALIBRATION_TEST_SHARE = env_float("CALIBRATION_TEST_SHARE", 0.3, minimum=0.05)
if CALIBRATION_TEST_SHARE > 0.95:
    raise ImproperlyConfigured(f"CALIBRATION_TEST_SHARE={CALIBRATION_TEST_SHARE} must be at "
                               "most 0.95")
CALIBRATION_SPLIT_SEED = env_int("CALIBRATION_SPLIT_SEED", 0, minimum=0)

# Denial-of-wallet guard: a run that would queue more model calls than this is refused.
MAX_QUEUED_CALLS_DEFAULT = env_int("MAX_QUEUED_CALLS_DEFAULT", 200_000, minimum=1)

# Import errors shown to the user are capped; the import still fails as a whole.
IMPORT_MAX_ERRORS = env_int("IMPORT_MAX_ERRORS", 50, minimum=1)
ALLOW_SIGNUP = env_bool("ALLOW_SIGNUP", True)

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
