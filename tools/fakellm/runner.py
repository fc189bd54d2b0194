"""Start the fake server in a separate process for tests and benchmarks.

A subprocess (not a thread) so the server never competes for the GIL with the code under test:
latency measurements then reflect the app, not the fake.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_PREFIX = "fakellm listening on "


class FakeLLM:
    """Handle on a running fake server: URLs plus thin wrappers around the control endpoints."""

    def __init__(self, process: subprocess.Popen[str], base_url: str):
        self.process = process
        self.base_url = base_url  # http://127.0.0.1:PORT (control endpoints live here)
        self.url = base_url + "/v1"  # what to pass as api_base to litellm/openai
        self.port = int(base_url.rsplit(":", 1)[1])
        self._http = httpx.Client(base_url=base_url, timeout=10.0)

    def control(self, **settings: Any) -> dict[str, Any]:
        """Partial settings update; returns the full settings now in effect."""
        response = self._http.post("/_control", json=settings)
        response.raise_for_status()
        return response.json()["settings"]

    def reset(self) -> dict[str, Any]:
        """Settings back to the startup ones, counters, RNG and request log cleared."""
        response = self._http.post("/_control/reset")
        response.raise_for_status()
        return response.json()["settings"]

    def settings(self) -> dict[str, Any]:
        response = self._http.get("/_control")
        response.raise_for_status()
        return response.json()["settings"]

    def stats(self) -> dict[str, Any]:
        response = self._http.get("/_stats")
        response.raise_for_status()
        return response.json()

    def requests(self, limit: int = 100) -> list[Any]:
        """The last ``limit`` request bodies received, oldest first."""
        response = self._http.get("/_stats/requests", params={"limit": limit})
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        self._http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _read_ready_line(process: subprocess.Popen[str], timeout_s: float) -> str:
    """Wait for the 'listening' line without blocking forever if the child dies or stalls."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"fakellm did not report ready within {timeout_s} s")
            if selector.select(timeout=remaining):
                line = process.stdout.readline()
                if not line:
                    code = process.wait(timeout=5)
                    raise RuntimeError(f"fakellm exited with code {code} before becoming ready")
                if line.startswith(READY_PREFIX):
                    return line[len(READY_PREFIX):].strip()


@contextmanager
def running_fakellm(
    host: str = "127.0.0.1", startup_timeout_s: float = 20.0, **settings: Any
) -> Iterator[FakeLLM]:
    """``with running_fakellm(latency_ms=500, seed=1) as fake: ... fake.url ...``

    ``settings`` are the startup settings (what ``fake.reset()`` returns to). The server's
    stderr is inherited, so crashes show up in the test output.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    command = [sys.executable, "-m", "tools.fakellm", "--host", host, "--port", "0"]
    if settings:
        command += ["--config", json.dumps(settings)]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        base_url = _read_ready_line(process, startup_timeout_s)
    except BaseException:
        process.kill()
        process.wait(timeout=5)
        raise
    fake = FakeLLM(process, base_url)
    try:
        yield fake
    finally:
        fake.close()
