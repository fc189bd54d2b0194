"""`make run`: the web server, one Celery worker and beat side by side, stopped together.

Embedded mode needs no server: SQLite in var/ and kombu's filesystem broker in var/broker/.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    env = dict(os.environ)
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    # A laptop: judge calls may go to servers on this machine (Ollama, vLLM, `make fakellm`).
    # On a network server the operator lists such bases itself (docs/deployment.md).
    env.setdefault("ALLOWED_API_BASES", "http://127.0.0.1:,http://localhost:")
    host = env.get("RUBRICLAB_HOST", "127.0.0.1")
    port = env.get("RUBRICLAB_PORT", "8000")
    python = sys.executable
    var = ROOT / "var"
    commands = {
        "worker": [python, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO",
                   "--concurrency=2", "--hostname=local@%h"],
        "beat": [python, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO",
                 f"--schedule={var / 'celerybeat-schedule'}"],
        "web": [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
    }
    processes = {name: subprocess.Popen(cmd, cwd=ROOT, env=env) for name, cmd in commands.items()}
    print(f"\nRubricLab is starting on http://{host}:{port}/ (Ctrl-C stops web, worker and beat)",
          flush=True)
    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        for name, proc in processes.items():
            if proc.poll() is not None:
                print(f"{name} exited with code {proc.returncode}; stopping the others", flush=True)
                code = proc.returncode or 1
                stopping = True
                break
        time.sleep(0.5)
    for proc in processes.values():
        if proc.poll() is None:
            proc.terminate()
    deadline = time.time() + 10
    for proc in processes.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
