"""Time `manage.py dataset_import` on 100,000 pointwise items of about 1 KB each (JSONL) and
measure the import's peak RSS. Not a test; run ``.venv/bin/python -m benchmarks.bench_import``.

The import runs as a subprocess, so its wall time includes Django's start-up (as a user's would)
and its peak RSS is its own, read from ``os.wait4`` for that one child (RUSAGE_CHILDREN would
also count the migrate subprocess). The database is DATABASE_URL, by default the PostgreSQL
database ``rubriclab_bench`` (created and migrated when missing); the benchmark's own project is
deleted afterwards.

The last two lines are machine-readable:
``BENCH import_100k_s ...`` then ``BENCH import_100k_rss_mb ...``.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rubriclab_bench"
N_ITEMS = 100_000
BOUND_S = 20.0
BOUND_RSS_MB = 300.0

WORDS = (
    "the judge reads each answer against the rubric and gives one level per criterion with a "
    "short rationale while people label the same items so that agreement can be measured "
    "before the reward model is trusted in training boil eggs nine minutes cool them in water "
    "peel under a running tap salt pepper butter bread oven heat stir slowly until thick"
).split()


def environment() -> dict[str, str]:
    env = {**os.environ}
    env.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env.pop("DEBUG", None)  # DEBUG keeps every query's SQL: not what production measures
    return env


def prepare_database(env: dict[str, str]) -> None:
    """Create the PostgreSQL database if missing, then migrate it (both idempotent)."""
    url = urlparse(env["DATABASE_URL"])
    if url.scheme in {"postgres", "postgresql", "pgsql"}:
        name = unquote(url.path.lstrip("/"))
        psql = ["psql", "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432),
                "-U", unquote(url.username or "postgres"), "-d", "postgres", "-tAc"]
        pg_env = {**env, "PGPASSWORD": unquote(url.password or "")}
        found = subprocess.run(
            [*psql, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
            env=pg_env, capture_output=True, text=True, check=True,
        ).stdout.strip()
        if found != "1":
            subprocess.run([*psql, f'CREATE DATABASE "{name}"'], env=pg_env, check=True,
                           capture_output=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT,
                   env=env, check=True)


def setup_django(env: dict[str, str]) -> None:
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE",
                                           "LITELLM_LOCAL_MODEL_COST_MAP")})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _text(rng: random.Random, n_chars: int) -> str:
    words: list[str] = []
    size = 0
    while size < n_chars:
        word = rng.choice(WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:n_chars]


def write_jsonl(path: Path, n: int, *, seed: int = 0, riders=None) -> int:
    """Write n pointwise rows of about 1 KB each; `riders(i)` may add labels/judgments."""
    rng = random.Random(seed)
    # A pool of texts, combined per row, keeps generation quick while rows still differ.
    prompts = [_text(rng, 250) for _ in range(200)]
    responses = [_text(rng, 600) for _ in range(300)]
    references = [_text(rng, 80) for _ in range(100)]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            row = {
                "id": f"item-{i:06d}",
                "prompt": f"Question {i}: " + prompts[i % len(prompts)],
                "response": responses[(i * 7) % len(responses)],
                "reference": references[(i * 13) % len(references)],
                "metadata": {"source": "bench", "split": "train" if i % 10 else "test",
                             "n": i},
            }
            if riders is not None:
                row.update(riders(i))
            fh.write(json.dumps(row) + "\n")
    return path.stat().st_size


def bench_project(slug: str):
    from django.contrib.auth import get_user_model

    from apps.projects.models import Membership, Project, Role

    delete_project(slug)  # left over from a run that was killed
    project = Project.objects.create(slug=slug, name=f"Benchmark {slug}")
    user, _ = get_user_model().objects.get_or_create(username=f"{slug}-owner")
    Membership.objects.create(project=project, user=user, role=Role.OWNER)
    return project, user


def delete_project(slug: str) -> None:
    from django.contrib.auth import get_user_model

    from apps.judging.models import JudgeRun
    from apps.projects.models import Project

    # Runs first: a run PROTECTs its rubric version, which the project's cascade also deletes.
    JudgeRun.objects.filter(project__slug=slug).delete()
    Project.objects.filter(slug=slug).delete()
    get_user_model().objects.filter(username=f"{slug}-owner").delete()


def run_import(env: dict[str, str], path: Path, slug: str, dataset: str) -> tuple[float, float]:
    """Run dataset_import as a child process; return (wall seconds, peak RSS in MB)."""
    # Output goes to files, not pipes: a child blocked on a full pipe would never exit.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "dataset_import", str(path), "--project", slug,
             "--dataset", dataset, "--json"],
            cwd=ROOT, env=env, stdout=out, stderr=err,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        sys.stderr.write(stderr[-4000:])
        raise SystemExit(f"dataset_import exited with {proc.returncode}")
    print(stdout.strip())
    return elapsed, usage.ru_maxrss / 1024  # Linux reports kilobytes


def main() -> None:
    env = environment()
    prepare_database(env)
    setup_django(env)
    from django.db import connection

    slug = "bench-import"
    bench_project(slug)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "items.jsonl"
            size = write_jsonl(path, N_ITEMS)
            print(f"{N_ITEMS} rows, {size / 1048576:.1f} MB, database {connection.vendor} "
                  f"{connection.settings_dict['NAME']}, {os.cpu_count()} CPUs, "
                  f"load average {os.getloadavg()[0]:.2f}")
            connection.close()  # no idle transaction or lock held while the child imports
            elapsed, rss_mb = run_import(env, path, slug, "bench-100k")
    finally:
        delete_project(slug)
    print(f"BENCH import_100k_s value={elapsed:.3f} unit=s bound={BOUND_S:g} "
          f"ratio={elapsed / BOUND_S:.3f}")
    print(f"BENCH import_100k_rss_mb value={rss_mb:.1f} unit=MB bound={BOUND_RSS_MB:g} "
          f"ratio={rss_mb / BOUND_RSS_MB:.3f}")


if __name__ == "__main__":
    main()
