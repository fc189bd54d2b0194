"""Real parts for tests, imported by the conftests that need them: the fake model server in its
own process, and real Celery worker processes on the real broker (Redis in CI, the filesystem
transport locally) against the test database. No eager mode (STYLE.md 10)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tools.fakellm.runner import running_fakellm

ROOT = Path(__file__).resolve().parents[1]

# Short timings so that a dead worker is noticed within seconds, not a minute.
WORKER_ENV = {
    "CELERY_COORDINATOR_INTERVAL_S": "1",
    "JUDGE_BATCH_STALE_S": "3",
    "JUDGE_HEARTBEAT_S": "0.5",
    "JUDGE_BACKOFF_BASE_S": "0.1",
    "JUDGE_BACKOFF_CAP_S": "2",
    "JUDGE_MAX_ATTEMPTS": "6",
    "JUDGE_SLOT_LEASE_S": "3",
}


@pytest.fixture(scope="session")
def fakellm():
    with running_fakellm() as server:
        yield server


@pytest.fixture
def fake(fakellm):
    fakellm.reset()
    yield fakellm
    fakellm.reset()


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def process_env(base: dict | None = None, extra_env: dict | None = None) -> dict:
    """The environment of a process of the app (worker, command) on this test run's database
    and broker."""
    env = {
        **(os.environ if base is None else base),
        **WORKER_ENV,
        **(extra_env or {}),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url(),
        "CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    if "data_folder_in" in options:
        env["CELERY_FILESYSTEM_BROKER_DIR"] = str(Path(options["data_folder_in"]).parent)
    return env


class Worker:
    """A Celery worker (with embedded beat, running the coordinator) in its own process group."""

    def __init__(self, *, concurrency: int = 1, extra_env: dict | None = None) -> None:
        self.schedule = tempfile.NamedTemporaryFile(prefix="beat-", delete=False)
        env = process_env(extra_env=extra_env)
        self.log = tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-B",
             f"--schedule={self.schedule.name}", "--loglevel=INFO", "--pool=prefork",
             f"--concurrency={concurrency}", "--without-gossip", "--without-mingle",
             "--without-heartbeat", f"--hostname=test-{os.getpid()}-{time.time_ns()}@%h"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.output()[-3000:]}")
            if " ready." in self.output():
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.output()[-3000:]}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def kill9(self) -> None:
        """SIGKILL the whole process group: the main process and its pool children at once."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()
        for name in (self.schedule.name, self.log.name):
            Path(name).unlink(missing_ok=True)


@pytest.fixture
def start_worker():
    workers: list[Worker] = []

    def start(**kwargs) -> Worker:
        began = time.monotonic()
        worker = Worker(**kwargs)
        workers.append(worker)
        worker.wait_ready()
        print(f"worker ready in {time.monotonic() - began:.1f}s")
        return worker

    yield start
    for worker in workers:
        worker.stop()
