"""Judge runs against a hostile provider, on real parts: a Celery worker process on Redis,
PostgreSQL, litellm and the fake provider (500 ms latency). Not a test; run
``.venv/bin/python -m benchmarks.bench_judge_faults``.

Figures (BENCH lines):
- judge_poison_requests_ratio: provider requests / planned calls for a 2,000-call run (1,000
  items x 2 criteria, concurrency 100) where 1 % of the answers carry a NUL (half escaped, half
  raw), 1 % an integer of 5,000 digits, and 1 % of the prompts are refused with a content-filter
  400. Bound 1.05: nothing is asked twice. The run must end "completed with failures".
- judge_poison_vs_clean_time: that run's time over the same run without faults. Bound 2.0.
- judge_unreachable_s: from starting a 120-call run against a closed port to the run being
  failed with the URL and the cause in its error. Bound 10 s.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_import import prepare_database  # noqa: E402
from benchmarks.bench_judge import (  # noqa: E402
    LATENCY_MS,
    PROJECT,
    Worker,
    bench,
    build_world,
    setup_env,  # noqa: E402
)

POISON = {"seed": 11, "rate_nul_escaped": 0.005, "rate_nul_raw": 0.005, "rate_huge_int": 0.01,
          "content_filter_share": 0.01}


def run_until_ended(project, version, dataset, api_base: str, *, timeout: float = 600):
    """Start a run and wait for its end (any final state); (seconds, run)."""
    from apps.judging.models import ACTIVE_STATUSES, JudgeRun
    from apps.judging.planning import RunSettings, judge_run_start
    from apps.judging.progress import batches_at_work

    started = time.perf_counter()
    run = judge_run_start(project=project, version=version, dataset=dataset,
                          run_settings=RunSettings(model="openai/fake-judge", api_base=api_base,
                                                   concurrency=100, use_cache=False,
                                                   timeout_s=30))
    while JudgeRun.objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES).exists():
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"run {run.pk} did not end in {timeout}s")
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    while batches_at_work(run):  # answers in flight are written before counting
        time.sleep(0.05)
    run.refresh_from_db()
    return elapsed, run


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def main() -> int:
    env = setup_env()
    prepare_database(env)
    os.environ.update(env)
    import django

    django.setup()
    from apps.judging.models import RunStatus
    from apps.judging.progress import run_progress
    from apps.judging.provider import _litellm
    from apps.projects.models import Project
    from tools.fakellm.runner import running_fakellm

    _litellm()  # imported before the clock starts, as in a running web server
    with running_fakellm(latency_ms=LATENCY_MS, jitter_ms=50) as fake:
        project, version, dataset = build_world(1000)
        worker = Worker(env, processes=1)
        try:
            clean, run = run_until_ended(project, version, dataset, fake.url)
            if run.status != RunStatus.COMPLETED:
                raise RuntimeError(f"the clean run ended {run.status}: {run.error_message}")
            print(f"clean run: {clean:.2f} s for {run.planned_calls} calls", flush=True)

            fake.control(**POISON)
            before = fake.stats()["requests"]
            poisoned, run = run_until_ended(project, version, dataset, fake.url)
            requests = fake.stats()["requests"] - before
            progress = run_progress(run)
            kinds = ", ".join(f"{e['error_kind']} {e['n']}" for e in progress.errors)
            print(f"poisoned run: {poisoned:.2f} s, ended {run.status}; planned "
                  f"{progress.planned}, done {progress.done}, invalid {progress.invalid}, "
                  f"failed {progress.failed}, pending {progress.pending} ({kinds}); provider "
                  f"requests {requests}", flush=True)
            if run.status != RunStatus.COMPLETED_WITH_FAILURES or progress.pending:
                raise RuntimeError(f"the poisoned run ended {run.status}: {run.error_message}")

            url = closed_port_url()
            unreachable, run = _unreachable(project, version, url)
            print(f"closed port: {run.status} after {unreachable:.2f} s: {run.error_message}",
                  flush=True)
            if run.status != RunStatus.FAILED or url not in run.error_message:
                raise RuntimeError(f"the unreachable run ended {run.status}")
        finally:
            worker.stop()
        bench("judge_poison_requests_ratio", requests / progress.planned, "x", 1.05)
        bench("judge_poison_vs_clean_time", poisoned / clean, "x", 2.0)
        bench("judge_unreachable_s", unreachable, "s", 10.0)
        Project.objects.filter(slug=PROJECT).delete()
    return 0


def _unreachable(project, version, url: str):
    """A 120-call run (60 items x 2 criteria) against a closed port."""
    from apps.datasets.models import Dataset, Item, Kind

    small = Dataset.objects.create(project=project, name="items-60", kind=Kind.POINTWISE,
                                   item_count=60)
    Item.objects.bulk_create(Item(dataset=small, external_id=str(n), position=n,
                                  prompt=f"Question {n}?", response=f"Answer {n}.")
                             for n in range(60))
    return run_until_ended(project, version, small, url, timeout=120)


if __name__ == "__main__":
    raise SystemExit(main())
