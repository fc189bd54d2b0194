"""The default probe suite on real parts: a Celery worker process on Redis, PostgreSQL, litellm
and the fake model at 500 ms. Not a test; run ``.venv/bin/python -m benchmarks.bench_probes``.

60 items with a reference, a rubric of one criterion, the judge named by its config; every
pointwise probe (14) x 50 items plus the 50 originals (750 calls), at concurrency 100, the
call cache emptied first so that every call is asked. Timed from judge_probe's service call to the
figures computed (probe_results).

BENCH probe_suite_s: bound = calls x 0.5 s / 100 (as if the calls went out 100 at a time with
no overhead); target ratio <= 1.3. Beside it, in the same run: a plain judge run of as many
items (750 calls, nothing cached) with the same judge, the executor's own time for that many
calls on this machine, against which the suite's overhead (generation, the hidden dataset,
the figures) is read.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_import import prepare_database  # noqa: E402
from benchmarks.bench_judge import Worker, bench, setup_env  # noqa: E402
from benchmarks.bench_workbench import wait  # noqa: E402

LATENCY_MS = 500
CONCURRENCY = 100
N_ITEMS, PER_PROBE = 60, 50
PROJECT = "bench-probes"


def build_world():
    from apps.datasets.models import Dataset, Item, Kind
    from apps.judging.models import JudgeConfig
    from apps.projects.models import Project
    from apps.rubrics import content as content_mod
    from apps.rubrics.services import rubric_import

    Project.objects.filter(slug=PROJECT).delete()
    project = Project.objects.create(slug=PROJECT, name="Probe benchmark",
                                     max_queued_calls=10**7)
    spec = {"rubric": "bench", "name": "Bench", "mode": "pointwise",
            "description": "Answers to short questions.",
            "criteria": [{"key": "correct", "weight": 1, "scale": {"type": "ordinal", "levels": [
                {"value": i, "anchor": f"correct level {i}"} for i in range(1, 6)]}}]}
    _, version, _ = rubric_import(project=project, content=content_mod.validate(spec),
                                  publish=True, note="bench")
    dataset = Dataset.objects.create(project=project, name="items", kind=Kind.POINTWISE,
                                     item_count=N_ITEMS)
    Item.objects.bulk_create(
        Item(dataset=dataset, external_id=str(n), position=n, prompt=f"Question number {n}?",
             response=f"Answer number {n}, with a few words of explanation. It ends here.",
             reference=f"The reference answer to question {n}.")
        for n in range(N_ITEMS))
    return project, version, dataset, JudgeConfig


def baseline(project, version, fake, calls: int) -> float:
    """A plain judge run of `calls` distinct items with the same judge, timed start to end."""
    from apps.datasets.models import Dataset, Item, Kind
    from apps.judging.planning import RunSettings, judge_run_start

    dataset = Dataset.objects.create(project=project, name="plain", kind=Kind.POINTWISE,
                                     item_count=calls)
    Item.objects.bulk_create(
        Item(dataset=dataset, external_id=str(n), position=n, prompt=f"Plain question {n}?",
             response=f"Plain answer {n}, with a few words of explanation.")
        for n in range(calls))
    started = time.perf_counter()
    run = judge_run_start(project=project, version=version, dataset=dataset,
                          run_settings=RunSettings(model="openai/fake-judge", api_base=fake.url,
                                                   concurrency=CONCURRENCY, timeout_s=30),
                          name="plain")
    wait(run)
    return time.perf_counter() - started


def main() -> int:
    env = setup_env()
    # The fake model listens on loopback, which the api_base policy refuses unless listed.
    env.setdefault("ALLOWED_API_BASES", "http://127.0.0.1:")
    prepare_database(env)
    os.environ.update(env)
    import django

    django.setup()
    from apps.judging.models import CallCache
    from apps.judging.progress import run_progress
    from apps.judging.provider import _litellm
    from apps.probes.measure import probe_results
    from apps.probes.services import probe_run_start
    from tools.fakellm.runner import running_fakellm

    _litellm()
    with running_fakellm(latency_ms=LATENCY_MS, jitter_ms=50) as fake:
        project, version, dataset, JudgeConfig = build_world()
        JudgeConfig.objects.create(project=project, rubric_version=version, name="fake-judge",
                                   model="openai/fake-judge", api_base=fake.url,
                                   concurrency=CONCURRENCY, timeout_s=30)
        CallCache.objects.filter(model="openai/fake-judge").delete()
        worker = Worker(env, processes=1)
        try:
            started = time.perf_counter()
            probe_run = probe_run_start(rubric=version.rubric, dataset=dataset,
                                        judge="fake-judge", per_probe=PER_PROBE)
            wait(probe_run.run)
            figures = probe_results(probe_run)
            elapsed = time.perf_counter() - started
            progress = run_progress(probe_run.run)
            plain = baseline(project, version, fake, progress.planned)
        finally:
            worker.stop()
        from apps.projects.models import Project

        Project.objects.filter(slug=PROJECT).delete()
    calls = progress.planned
    print(f"probe suite: {len(figures['probes'])} probes x {PER_PROBE} items + "
          f"{figures['originals']['n']} originals = {calls} calls ({progress.calls} asked, "
          f"{progress.cached} from the cache within the run) in {elapsed:.2f} s", flush=True)
    print(f"beside it: a plain judge run of {calls} calls, nothing cached: {plain:.2f} s; the "
          f"suite took {elapsed / plain:.2f} of it", flush=True)
    bench("probe_suite_s", elapsed, "s", calls * LATENCY_MS / 1000 / CONCURRENCY)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
