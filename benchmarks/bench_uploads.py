"""Uploads that cannot stall the server (issue 13). Not a test; run
``.venv/bin/python -m benchmarks.bench_uploads``.

1. ``upload_anonymous_1gb_s``: gunicorn (one sync worker, the app's real WSGI entry) receives a
   POST to the dataset upload page with ``Content-Length: 1 GB`` from a client that is not
   signed in, while the client streams the body as fast as it can. The figure is the time until
   the server's answer (the login redirect) arrives. Beside it, in the same run, a plain GET of
   the login page (the baseline: what any answer costs).
2. ``import_one_50mb_line_s``: ``manage.py dataset_import`` of a file whose one row is a 50 MB
   line (IMPORT_MAX_LINE_MB=64), wall time as a user sees it. Beside it, the same command on a
   one-row file of ordinary size (start-up and the rest of the import: the baseline).

The database is DATABASE_URL, by default PostgreSQL ``rubriclab_bench`` (see bench_import).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.bench_import import (
    ROOT,
    bench_project,
    delete_project,
    environment,
    prepare_database,
    run_import,
    setup_django,
)

PORT = int(os.environ.get("BENCH_UPLOAD_PORT", "8236"))
GB = 1024 ** 3
BOUND_UPLOAD_S = 1.0
BOUND_LINE_S = 5.0


def _start_gunicorn(env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind",
         f"127.0.0.1:{PORT}", "--workers", "1", "--timeout", "60", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", PORT), timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(proc.stderr.read().decode()[-3000:]) from None
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("gunicorn did not start")


def _first_line(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0]


def time_get(path: str) -> float:
    began = time.perf_counter()
    with socket.create_connection(("127.0.0.1", PORT), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                     .encode())
        line = _first_line(sock)
    assert line.startswith(b"HTTP/1.1 200"), line
    return time.perf_counter() - began


def time_anonymous_upload(path: str) -> tuple[float, bytes, int]:
    """Seconds until the answer's status line arrives, the line, and the bytes sent by then."""
    sock = socket.create_connection(("127.0.0.1", PORT), timeout=30)
    sent = 0
    stop = threading.Event()

    def stream() -> None:
        nonlocal sent
        block = b"x" * (1024 * 1024)
        try:
            while sent < GB and not stop.is_set():
                sock.sendall(block)
                sent += len(block)
        except OSError:  # the server closed the connection after answering
            pass

    began = time.perf_counter()
    sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {GB}\r\n"
                  "Content-Type: multipart/form-data; boundary=bench\r\nConnection: close"
                  "\r\n\r\n").encode())
    sender = threading.Thread(target=stream, daemon=True)
    sender.start()
    try:
        line = _first_line(sock)
    except ConnectionResetError:
        line = b"(connection reset)"
    elapsed = time.perf_counter() - began
    stop.set()
    sock.close()
    sender.join(timeout=5)
    return elapsed, line, sent


def main() -> None:
    env = environment()
    prepare_database(env)
    setup_django(env)
    from django.db import connection

    slug = "bench-uploads"
    bench_project(slug)
    connection.close()
    try:
        web_env = {**env, "DJANGO_SETTINGS_MODULE": "config.settings.base", "DEBUG": "0"}
        server = _start_gunicorn(web_env)
        try:
            baseline = min(time_get("/accounts/login/") for _ in range(5))
            runs = [time_anonymous_upload(f"/p/{slug}/datasets/upload/") for _ in range(3)]
        finally:
            server.terminate()
            server.wait(timeout=10)
        for elapsed, line, sent in runs:
            print(f"anonymous 1 GB POST: {line.decode(errors='replace')} after {elapsed:.3f} s, "
                  f"{sent / 1048576:.0f} MB sent by then")
        upload_s = max(r[0] for r in runs)
        print(f"baseline GET /accounts/login/: {baseline:.4f} s")

        with tempfile.TemporaryDirectory() as tmp:
            big = Path(tmp) / "one-line.jsonl"
            big.write_text(json.dumps({"id": "big", "prompt": "p", "response": "r" * 50 * 1024
                                       * 1024}) + "\n", encoding="utf-8")
            small = Path(tmp) / "small.jsonl"
            small.write_text(json.dumps({"id": "s", "prompt": "p", "response": "r"}) + "\n")
            import_env = {**env, "IMPORT_MAX_LINE_MB": "64"}
            line_s, rss = run_import(import_env, big, slug, "one-50mb-line")
            small_s, _ = run_import(import_env, small, slug, "one-small-line")
        print(f"one 50 MB line: {line_s:.3f} s (peak RSS {rss:.0f} MB); "
              f"one small line: {small_s:.3f} s")
    finally:
        delete_project(slug)
    print(f"BENCH upload_anonymous_1gb_s value={upload_s:.3f} unit=s bound={BOUND_UPLOAD_S:g} "
          f"ratio={upload_s / BOUND_UPLOAD_S:.3f} baseline_get_s={baseline:.4f}")
    print(f"BENCH import_one_50mb_line_s value={line_s:.3f} unit=s bound={BOUND_LINE_S:g} "
          f"ratio={line_s / BOUND_LINE_S:.3f} baseline_small_s={small_s:.3f}")


if __name__ == "__main__":
    main()
