"""Settings for the test suite: the same code paths, faster password hashing."""

from config.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The fake model server listens on a loopback port chosen at run time: the operator's policy
# (apps/judging/egress.py) lists loopback for the tests, as tools/run_local.py does for a laptop.
from config.env import env_list  # noqa: E402

ALLOWED_API_BASES = env_list("ALLOWED_API_BASES", ["http://127.0.0.1:"])
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Tests that start a real Celery worker give it this queue and broker folder through the
# environment, so two test runs (or `make run`) on one machine never take each other's messages.
import os  # noqa: E402

from config.settings.base import DATABASES, VAR_DIR  # noqa: E402
from config.settings.celery import CELERY_BROKER_URL  # noqa: E402

CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE") or f"rubriclab-test-{os.getpid()}"
if CELERY_BROKER_URL.startswith("filesystem://"):
    _TEST_BROKER = os.environ.get("CELERY_FILESYSTEM_BROKER_DIR") or str(
        VAR_DIR / f"test-broker-{os.getpid()}"
    )
    for _sub in ("out", "processed", "control"):
        os.makedirs(os.path.join(_TEST_BROKER, _sub), exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": os.path.join(_TEST_BROKER, "out"),
        "data_folder_out": os.path.join(_TEST_BROKER, "out"),
        "processed_folder": os.path.join(_TEST_BROKER, "processed"),
        "control_folder": os.path.join(_TEST_BROKER, "control"),
        "store_processed": False,
        "polling_interval": 0.05,
    }
# A worker process cannot open an in-memory SQLite database: tests use a file.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
