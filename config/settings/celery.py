"""Celery settings (read by config/celery.py through the CELERY_ namespace).

The database is the truth about judge runs; the broker only carries "go and do batch N" messages,
so everything here is about redelivery being safe and prompt (see docs/decisions/0002).
"""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.env import env_int, env_str

_VAR_DIR = Path(env_str("RUBRICLAB_VAR_DIR", str(Path(__file__).resolve().parents[2] / "var")))
_BROKER_DIR = _VAR_DIR / "broker"

# Default: kombu's filesystem transport, so `make run` needs no broker server.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_VISIBILITY_TIMEOUT = env_int("CELERY_BROKER_VISIBILITY_TIMEOUT", 3600, minimum=60)

_BROKER_DIR = Path(env_str("CELERY_FILESYSTEM_BROKER_DIR", str(_BROKER_DIR)))
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("out", "processed", "control"):
        (_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "out"),
        "data_folder_out": str(_BROKER_DIR / "out"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
        # The filesystem transport polls; the default (1 s) caps a worker at ~1 message/s.
        "polling_interval": 0.1,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT}

# Tests and side-by-side deployments can keep their messages apart with their own queue.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "rubriclab")
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task is acknowledged after it ran, and redelivered if its worker died: results are written
# under unique keys, so a second delivery finds its work done.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Below the broker's visibility timeout, so a slow batch is stopped before the broker would
# hand the same message to another worker.
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 900, minimum=10)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
# Said at start-up, not found out as every long batch running twice: a broker with a visibility
# timeout (Redis, SQS) hands an unacknowledged message to another worker once it expires, so the
# hard limit (soft + 60 s) must end the task first. The filesystem transport has no such timeout.
if (not CELERY_BROKER_URL.startswith("filesystem://")
        and CELERY_TASK_TIME_LIMIT >= CELERY_BROKER_VISIBILITY_TIMEOUT):
    raise ImproperlyConfigured(
        f"CELERY_TASK_SOFT_TIME_LIMIT={CELERY_TASK_SOFT_TIME_LIMIT} plus 60 s must stay below "
        f"CELERY_BROKER_VISIBILITY_TIMEOUT={CELERY_BROKER_VISIBILITY_TIMEOUT}, or the broker "
        "re-delivers batches that are still running"
    )
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("CELERY_WORKER_MAX_MEMORY_PER_CHILD", 400_000)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# The run coordinator re-sends stalled batches and marks runs finished.
CELERY_COORDINATOR_INTERVAL_S = env_int("CELERY_COORDINATOR_INTERVAL_S", 10, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "judge-run-coordinator": {
        "task": "apps.judging.tasks.coordinate_runs",
        "schedule": float(CELERY_COORDINATOR_INTERVAL_S),
        # A coordinator message that waited longer than one interval is superseded by the next.
        "options": {"expires": float(CELERY_COORDINATOR_INTERVAL_S)},
    },
}
