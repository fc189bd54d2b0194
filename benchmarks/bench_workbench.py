"""Workbench re-score after an anchor edit, on real parts: a Celery worker process on Redis,
PostgreSQL, litellm and the fake model at 500 ms. Not a test; run
``.venv/bin/python -m benchmarks.bench_workbench``.

300 labelled items (210 development), a rubric of 3 criteria, judged once in full by the same
model (so its answers are in the call cache); then one criterion's anchor is edited and the draft
re-scored on 200 development items x 3 criteria at concurrency 100: 200 prompts changed (asked
at 500 ms), 400 unchanged (from the cache). Timed from the re-score's start to its before /
after table, computed.

BENCH workbench_rescore_200_s: bound 600 x 0.5 / 100 = 3 s (as if all 600 calls were asked).
Beside it, in the same run: the same re-score with nothing cached (all 600 asked), the
baseline the cache is measured against.
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

LATENCY_MS = 500
N_ITEMS, RESCORED = 300, 200
BOUND_S = 3 * RESCORED * LATENCY_MS / 1000 / 100
PROJECT = "bench-workbench"


def build_world():
    from apps.datasets.models import Dataset, Item, Kind
    from apps.labeling.models import HumanLabel, LabelSource
    from apps.projects.models import Membership, Project, Role
    from apps.rubrics import content as content_mod
    from apps.rubrics import scales
    from apps.rubrics.services import rubric_import

    Project.objects.filter(slug=PROJECT).delete()
    project = Project.objects.create(slug=PROJECT, name="Workbench benchmark",
                                     max_queued_calls=10**7)
    keys = ("correct", "clear", "complete")
    spec = {"rubric": "bench", "name": "Bench", "mode": "pointwise",
            "description": "Answers to short questions.",
            "criteria": [{"key": key, "weight": 1, "scale": {"type": "ordinal", "levels": [
                {"value": i, "anchor": f"{key} level {i}"} for i in range(1, 6)]}}
                for key in keys]}
    _, version, _ = rubric_import(project=project, content=content_mod.validate(spec),
                                  publish=True, note="bench")
    dataset = Dataset.objects.create(project=project, name="items", kind=Kind.POINTWISE,
                                     item_count=N_ITEMS)
    items = Item.objects.bulk_create(
        Item(dataset=dataset, external_id=str(n), position=n, prompt=f"Question number {n}?",
             response=f"Answer number {n}, with a few words of explanation.")
        for n in range(N_ITEMS))
    signature = scales.scale_signature(spec["criteria"][0]["scale"])
    HumanLabel.objects.bulk_create(
        HumanLabel(item=item, criterion_key=key, annotator=who, value=str(n % 5 + 1),
                   scale_signature=signature, source=LabelSource.IMPORT)
        for n, item in enumerate(items) for key in keys for who in ("ann1", "ann2"))
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=f"bench-{time.time_ns()}")
    Membership.objects.create(project=project, user=user, role=Role.EDITOR)
    return project, version, dataset, user


def wait(run, timeout: float = 600) -> None:
    from apps.judging.models import JudgeRun, RunStatus

    started = time.perf_counter()
    while True:
        status = JudgeRun.objects.filter(pk=run.pk).values_list("status", flat=True).first()
        if status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            if status != RunStatus.COMPLETED:
                raise RuntimeError(f"run {run.pk} ended {status}")
            return
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"run {run.pk} did not finish in {timeout}s")
        time.sleep(0.02)


def rescore(rubric, dataset, base, fake, user, *, threshold_text: str) -> tuple[float, dict]:
    from apps.calibration import rescore as rs
    from apps.calibration import workbench as wb
    from apps.judging.planning import RunSettings

    wb.draft_edit(rubric=rubric, task="Answers to short questions.", criteria={
        "correct": {"description": "", "anchors": [f"correct level {i} {threshold_text}"
                                                   for i in range(1, 6)]}})
    started = time.perf_counter()
    result = rs.rescore_start(
        rubric=rubric, dataset=dataset, base_run=base, user=user, limit=RESCORED,
        run_settings=RunSettings(model="openai/fake-judge", api_base=fake.url, concurrency=100,
                                 timeout_s=30))
    wait(result.run)
    table = rs.before_after(result)
    return time.perf_counter() - started, {"rescore": result, "table": table}


def main() -> int:
    env = setup_env()
    # The fake model listens on loopback, which the api_base policy refuses unless listed.
    env.setdefault("ALLOWED_API_BASES", "http://127.0.0.1:")
    prepare_database(env)
    os.environ.update(env)
    import django

    django.setup()
    from apps.judging.models import CallCache
    from apps.judging.planning import RunSettings, judge_run_start
    from apps.judging.progress import run_progress
    from apps.judging.provider import _litellm
    from tools.fakellm.runner import running_fakellm

    _litellm()
    with running_fakellm(latency_ms=0) as fake:
        project, version, dataset, user = build_world()
        CallCache.objects.filter(model="openai/fake-judge").delete()
        worker = Worker(env, processes=1)
        try:
            base = judge_run_start(project=project, version=version, dataset=dataset,
                                   run_settings=RunSettings(model="openai/fake-judge",
                                                            api_base=fake.url, concurrency=100,
                                                            timeout_s=30))
            wait(base)
            fake.control(latency_ms=LATENCY_MS, jitter_ms=50)
            rubric = version.rubric
            edited, out = rescore(rubric, dataset, base, fake, user, threshold_text="(edited)")
            progress = run_progress(out["rescore"].run)
            print(f"re-score after an anchor edit: {edited:.2f} s, {progress.planned} calls, "
                  f"{progress.cached} from the cache, {progress.calls} asked", flush=True)
            assert progress.planned == 3 * RESCORED and progress.cached == 2 * RESCORED
            CallCache.objects.filter(model="openai/fake-judge").delete()
            # The baseline: the same re-score with an empty cache (every call asked).
            cold, out = rescore(rubric, dataset, base, fake, user, threshold_text="(again)")
            cold_progress = run_progress(out["rescore"].run)
            print(f"same re-score, nothing cached: {cold:.2f} s, {cold_progress.calls} asked; "
                  f"the edit's re-score took {edited / cold:.2f} of it", flush=True)
        finally:
            worker.stop()
        from apps.projects.models import Project

        Project.objects.filter(slug=PROJECT).delete()
        user.delete()
    bench("workbench_rescore_200_s", edited, "s", BOUND_S)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
