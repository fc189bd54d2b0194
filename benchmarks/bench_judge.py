"""Judge-run throughput on real parts: a Celery worker process on Redis, PostgreSQL, litellm and
the fake provider (500 ms latency). Not a test; run ``.venv/bin/python -m benchmarks.bench_judge``
(optionally with phases: ``workers``, ``throughput``, ``cache``, ``rss``).

Figures (BENCH lines):
- judge_2000_calls_s: 1,000 items x 2 criteria, concurrency 100, one worker process, from
  starting the run to the last verdict stored. Bound 2000 x 0.5 / 100 = 10 s.
- judge_vs_bare_litellm: that time over the time of a bare asyncio loop over
  litellm.acompletion at the same concurrency on the same 2,000 prompts. Bound 1.0.
- judge_2_workers_s: the same with two worker processes, concurrency 50 each. Bound 10 s.
- judge_1000_one_worker_vs_bare: 1,000 items x 1 criterion, run-wide concurrency 100, one
  worker process, over a bare single-process asyncio loop over litellm.acompletion at
  concurrency 100 on the same 1,000 prompts, measured in the same run (the faster of two bare
  runs, one before and one after). Bound 1.1.
- judge_1000_two_workers_vs_bare: the same with two worker processes (two Celery workers of one
  process each) sharing the run-wide concurrency of 100. Bound 1.0. The fake's most requests in
  flight at once is printed beside it (never above 100).
- judge_cache_2000_s: the identical run again, every answer from the cache, zero provider calls.
  Bound 3 s.
- judge_worker_rss_mb: peak RSS of a worker pool process over a 100,000-call run at zero
  latency (bound 500 MB); judge_worker_rss_growth_pct: its growth from a 10,000-call run
  (bound 10 %). Two pool processes share these runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_import import prepare_database  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rubriclab_bench"
DEFAULT_BROKER = "redis://127.0.0.1:6379/14"
LATENCY_MS = 500
BOUND_S = 2000 * LATENCY_MS / 1000 / 100
PROJECT = "bench-judge"


def bench(name: str, value: float, unit: str, bound: float) -> None:
    print(f"BENCH {name} value={value:.3f} unit={unit} bound={bound:g} "
          f"ratio={value / bound:.3f}", flush=True)


def setup_env() -> dict[str, str]:
    env = {**os.environ}
    env.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    env.setdefault("CELERY_BROKER_URL", DEFAULT_BROKER)
    env["CELERY_QUEUE"] = f"bench-{os.getpid()}"
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    # The fake model listens on loopback, which the api_base policy refuses unless listed.
    env.setdefault("ALLOWED_API_BASES", "http://127.0.0.1:")
    env.pop("DEBUG", None)
    return env


class Worker:
    def __init__(self, env: dict[str, str], processes: int) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="bench-worker-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO",
             "--pool=prefork", f"--concurrency={processes}", "--without-gossip",
             "--without-mingle", "--without-heartbeat", f"--hostname=bench-{time.time_ns()}@%h",
             "-E"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        time.sleep(1)
        import psutil

        deadline = time.monotonic() + 60
        while len(psutil.Process(self.process.pid).children()) < processes:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(Path(self.log.name).read_text()[-3000:])
            time.sleep(0.2)
        time.sleep(1.0)

    def pool_peak_rss_mb(self) -> float:
        import psutil

        peaks = []
        for child in psutil.Process(self.process.pid).children():
            status = Path(f"/proc/{child.pid}/status").read_text()
            hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
            peaks.append(int(hwm.split()[1]) / 1024)
        return max(peaks)

    def stop(self) -> None:
        import signal

        for line in Path(self.log.name).read_text().splitlines():
            if "apps.judging.executor" in line:
                print("  worker:", line.split(": ", 1)[-1], flush=True)
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        Path(self.log.name).unlink(missing_ok=True)


def build_world(n_items: int, criteria: tuple[str, ...] = ("correct", "clear")):
    from apps.datasets.models import Dataset, Item, Kind
    from apps.projects.models import Project
    from apps.rubrics import content as content_mod
    from apps.rubrics.services import rubric_import

    Project.objects.filter(slug=PROJECT).delete()
    project = Project.objects.create(slug=PROJECT, name="Benchmark", max_queued_calls=10**7)
    spec = {
        "rubric": "bench", "name": "Bench", "mode": "pointwise",
        "description": "Answers to short questions.",
        "criteria": [
            {"key": key, "weight": 1, "scale": {"type": "ordinal", "levels": [
                {"value": i, "anchor": f"{key} level {i}"} for i in range(1, 6)]}}
            for key in criteria
        ],
    }
    _, version, _ = rubric_import(project=project, content=content_mod.validate(spec),
                                  publish=True, note="bench")
    dataset = Dataset.objects.create(project=project, name=f"items-{n_items}", kind=Kind.POINTWISE,
                                     item_count=n_items)
    Item.objects.bulk_create(
        (Item(dataset=dataset, external_id=str(n), position=n, prompt=f"Question number {n}?",
              response=f"Answer number {n}, with a few words of explanation.")
         for n in range(n_items)), batch_size=5000)
    return project, version, dataset


def timed_run(project, version, dataset, fake, *, concurrency: int, use_cache: bool,
              timeout: float = 1200, samples: list | None = None):
    from apps.judging.models import JudgeRun, RunStatus
    from apps.judging.planning import RunSettings, judge_run_start

    started = time.perf_counter()
    settings = RunSettings(model="openai/fake-judge", api_base=fake.url,
                           concurrency=concurrency, use_cache=use_cache, timeout_s=30)
    run = judge_run_start(project=project, version=version, dataset=dataset,
                          run_settings=settings)
    while True:
        status = JudgeRun.objects.filter(pk=run.pk).values_list("status", flat=True).first()
        if status != RunStatus.QUEUED and status != RunStatus.RUNNING:
            break
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"run {run.pk} did not finish in {timeout}s")
        if samples is not None:  # requests in flight at the fake, for the printout
            samples.append((round(time.perf_counter() - started, 1), fake.stats()["in_flight"]))
            time.sleep(0.1)
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    run.refresh_from_db()
    from apps.judging.progress import run_progress

    progress = run_progress(run)
    if run.status != RunStatus.COMPLETED or progress.done != run.planned_calls:
        raise RuntimeError(f"run {run.pk}: {run.status}, {progress}")
    return elapsed, run


BARE_LOOP = r'''
import asyncio, json, sys, time
import litellm
messages = json.load(open(sys.argv[1]))
url, concurrency = sys.argv[2], int(sys.argv[3])
async def main():
    sem = asyncio.Semaphore(concurrency)
    async def one(m):
        async with sem:
            r = await litellm.acompletion(model="openai/fake-judge", api_base=url, api_key="x",
                                          messages=m, temperature=0, max_tokens=400, timeout=30,
                                          num_retries=0)
            return r.choices[0].message.content
    started = time.perf_counter()
    out = await asyncio.gather(*(one(m) for m in messages))
    assert len(out) == len(messages)
    return time.perf_counter() - started
print(asyncio.run(main()))
'''


def bare_loop(version, dataset, fake, concurrency: int) -> float:
    from apps.rubrics import prompting
    from apps.rubrics.selectors import judge_spec

    spec = judge_spec(version)
    messages = [prompting.build_messages(spec, c, item.fields())
                for item in dataset.items.order_by("position") for c in spec["criteria"]]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(messages, fh)
    try:
        out = subprocess.run([sys.executable, "-c", BARE_LOOP, fh.name, fake.url, str(concurrency)],
                             capture_output=True, text=True, check=True,
                             env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    finally:
        os.unlink(fh.name)
    return float(out.stdout.strip().splitlines()[-1])


def workers_phase(env: dict[str, str], fake) -> None:
    """One and two worker processes against the bare loop, 1,000 items x 1 criterion, C = 100."""
    project, version, dataset = build_world(1000, criteria=("correct",))
    _, _, warm = build_world_extra(project, version, 200)
    bare_before = bare_loop(version, dataset, fake, 100)
    print(f"bare litellm loop: {bare_before:.2f} s", flush=True)
    figures = {}
    for count in (1, 2):
        workers = [Worker(env, processes=1) for _ in range(count)]
        try:
            # Warm workers, as a deployment's are: litellm's HTTP client and the first queries.
            timed_run(project, version, warm, fake, concurrency=100, use_cache=False)
            fake.reset()
            fake.control(latency_ms=LATENCY_MS, jitter_ms=50)
            samples: list = []
            figures[count], run = timed_run(project, version, dataset, fake, concurrency=100,
                                            use_cache=False, samples=samples)
            print("  in flight over time:", " ".join(f"{t}:{n}" for t, n in samples[::4]))
            stats = fake.stats()
            print(f"{count} worker(s): {figures[count]:.2f} s for {run.planned_calls} calls, "
                  f"{stats['requests']} requests, at most {stats['max_in_flight']} in flight",
                  flush=True)
        finally:
            for worker in workers:
                worker.stop()
    bare_after = bare_loop(version, dataset, fake, 100)
    print(f"bare litellm loop again: {bare_after:.2f} s", flush=True)
    bare = min(bare_before, bare_after)
    bench("judge_1000_one_worker_vs_bare", figures[1] / bare, "x", 1.1)
    bench("judge_1000_two_workers_vs_bare", figures[2] / bare, "x", 1.0)


def build_world_extra(project, version, n_items: int):
    """A second, smaller dataset in the same project (the warm-up run)."""
    from apps.datasets.models import Dataset, Item, Kind

    dataset = Dataset.objects.create(project=project, name=f"warm-{n_items}",
                                     kind=Kind.POINTWISE, item_count=n_items)
    Item.objects.bulk_create(
        Item(dataset=dataset, external_id=f"w{n}", position=n, prompt=f"Warm-up {n}?",
             response=f"Warm answer {n}.") for n in range(n_items))
    return project, version, dataset


def main() -> int:
    phases = set(sys.argv[1:]) or {"workers", "throughput", "cache", "rss"}
    env = setup_env()
    prepare_database(env)
    os.environ.update(env)
    import django

    django.setup()
    from apps.judging.models import CallCache
    from apps.judging.provider import _litellm
    from tools.fakellm.runner import running_fakellm

    # A running web server has litellm loaded (the start form prices the run); so does this
    # process before the clock starts, or its seconds-long import would be counted as judging.
    _litellm()

    with running_fakellm(latency_ms=LATENCY_MS, jitter_ms=50) as fake:
        if "workers" in phases:
            workers_phase(env, fake)
        project, version, dataset = build_world(1000)
        CallCache.objects.filter(model="openai/fake-judge").delete()
        if phases & {"throughput", "cache"}:
            worker = Worker(env, processes=1)
            try:
                one, run = timed_run(project, version, dataset, fake, concurrency=100,
                                     use_cache=False)
                print(f"one worker: {one:.2f} s for {run.planned_calls} calls", flush=True)
                if "cache" in phases:
                    before = fake.stats()["requests"]
                    cached, _ = timed_run(project, version, dataset, fake, concurrency=100,
                                          use_cache=True)
                    calls = fake.stats()["requests"] - before
                    print(f"cached run: {cached:.2f} s, provider calls {calls}", flush=True)
            finally:
                worker.stop()
            if "throughput" in phases:
                bare = bare_loop(version, dataset, fake, 100)
                print(f"bare litellm loop: {bare:.2f} s", flush=True)
                worker = Worker(env, processes=2)
                try:
                    two, _ = timed_run(project, version, dataset, fake, concurrency=50,
                                       use_cache=False)
                    print(f"two workers: {two:.2f} s", flush=True)
                finally:
                    worker.stop()
                bench("judge_2000_calls_s", one, "s", BOUND_S)
                bench("judge_vs_bare_litellm", one / bare, "x", 1.0)
                bench("judge_2_workers_s", two, "s", BOUND_S)
            if "cache" in phases:
                bench("judge_cache_2000_s", cached, "s", 3.0)
        if "rss" in phases:
            fake.control(latency_ms=0, jitter_ms=0)
            peaks = {}
            for n_items in (5_000, 50_000):
                project, version, dataset = build_world(n_items)
                # Two pool processes share the run (it is CPU-bound at zero latency); the figure
                # is the peak of either process.
                worker = Worker(env, processes=2)
                try:
                    elapsed, run = timed_run(project, version, dataset, fake, concurrency=100,
                                             use_cache=False, timeout=3600)
                    peaks[run.planned_calls] = worker.pool_peak_rss_mb()
                    print(f"{run.planned_calls} calls at zero latency: {elapsed:.1f} s, "
                          f"pool peak RSS {peaks[run.planned_calls]:.1f} MB", flush=True)
                finally:
                    worker.stop()
            small, large = peaks[10_000], peaks[100_000]
            bench("judge_worker_rss_growth_pct", 100 * (large - small) / small, "%", 10.0)
            bench("judge_worker_rss_mb", large, "MB", 500.0)
        from apps.projects.models import Project

        Project.objects.filter(slug=PROJECT).delete()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
