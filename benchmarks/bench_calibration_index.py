"""The calibration index (judge x criterion table and forest plots) with 20 judges x 6 criteria
on 500 labelled items (2 annotators, a 350 / 150 development / test split), from the database
(PostgreSQL by default). Not a test; run ``.venv/bin/python -m benchmarks.bench_calibration_index``.

BENCH calibration_index_queries (bound 20) and calibration_index_p95_ms (bound 300 ms, over 30
page loads after a first one that draws the split). Beside it, the baseline in the same run:
the 20 judges' full reports one by one, as the page would cost without the batched summary.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_import import prepare_database  # noqa: E402

N_ITEMS, KEYS, N_JUDGES, LOADS = 500, [f"c{i}" for i in range(1, 7)], 20, 30
PROJECT = "bench-calibration-index"


def main() -> int:
    env = {**os.environ}
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rubriclab_bench")
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env.pop("DEBUG", None)
    prepare_database(env)
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from apps.calibration.report import calibration_report
    from apps.datasets.models import Dataset, Item, Kind
    from apps.judging.models import JudgeRun, RunKind, RunStatus, Verdict
    from apps.labeling.models import HumanLabel, LabelSource
    from apps.projects.models import Membership, Project, Role
    from apps.rubrics import content as content_mod
    from apps.rubrics import scales
    from apps.rubrics.services import rubric_import

    Project.objects.filter(slug=PROJECT).delete()
    project = Project.objects.create(slug=PROJECT, name="Calibration index benchmark")
    spec = {"rubric": "bench", "name": "Bench", "mode": "pointwise", "criteria": [
        {"key": k, "weight": 1, "scale": {"type": "ordinal", "levels": [
            {"value": v, "anchor": f"{k} {v}"} for v in range(1, 6)]}} for k in KEYS]}
    _, version, _ = rubric_import(project=project, content=content_mod.validate(spec),
                                  publish=True, note="bench")
    signature = scales.scale_signature(spec["criteria"][0]["scale"])
    dataset = Dataset.objects.create(project=project, name="bench", kind=Kind.POINTWISE,
                                     item_count=N_ITEMS)
    items = Item.objects.bulk_create(
        Item(dataset=dataset, external_id=str(i), position=i, prompt=f"q{i}",
             response="a" * (i % 97 + 1)) for i in range(N_ITEMS))
    rng = random.Random(0)
    truth = {(item.pk, k): rng.randint(1, 5) for item in items for k in KEYS}
    HumanLabel.objects.bulk_create(
        (HumanLabel(item_id=item.pk, criterion_key=k, annotator=name, scale_signature=signature,
                    value=str(truth[(item.pk, k)] if rng.random() < 0.8 else rng.randint(1, 5)),
                    source=LabelSource.IMPORT)
         for item in items for k in KEYS for name in ("ann1", "ann2")), batch_size=10000)
    runs = []
    for j in range(N_JUDGES):
        run = JudgeRun.objects.create(project=project, rubric_version=version, dataset=dataset,
                                      name=f"judge-{j:02d}", kind=RunKind.IMPORTED,
                                      status=RunStatus.COMPLETED)
        skill = 0.4 + 0.5 * j / N_JUDGES
        Verdict.objects.bulk_create(
            (Verdict(run=run, item_id=item.pk, criterion_key=k,
                     value=str(truth[(item.pk, k)] if rng.random() < skill
                               else rng.randint(1, 5)))
             for item in items for k in KEYS), batch_size=10000)
        runs.append(run)
    print(f"{N_JUDGES} judges x {len(KEYS)} criteria on {N_ITEMS} labelled items", flush=True)

    setup_test_environment()
    user = get_user_model().objects.create_user(username=f"bench-{time.time_ns()}")
    Membership.objects.create(project=project, user=user, role=Role.EDITOR)
    client = Client()
    client.force_login(user)
    url = f"/p/{PROJECT}/calibration/?rubric=bench"
    assert client.get(url).status_code == 200  # draws the split
    timings, cpu = [], []
    for _ in range(LOADS):
        with CaptureQueriesContext(connection) as queries:
            started, started_cpu = time.perf_counter(), time.process_time()
            page = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        assert page.status_code == 200 and page.content.count(b'class="forest"') == len(KEYS)
    n_queries = len(queries)
    p95 = statistics.quantiles(timings, n=20)[-1]
    started = time.perf_counter()
    for run in runs:
        calibration_report(version=version, dataset=dataset, run=run, with_bias=False,
                           looks={})
    baseline = (time.perf_counter() - started) * 1000
    print(f"page: median {statistics.median(timings):.0f} ms, p95 {p95:.0f} ms (CPU of this "
          f"process: median {statistics.median(cpu):.0f} ms; the rest is waiting for the "
          f"database or for a core on a shared machine); baseline (20 full reports one by "
          f"one, no page): {baseline:.0f} ms", flush=True)
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        client.get(url)
        profiler.disable()
        pstats.Stats(profiler).sort_stats(os.environ["BENCH_PROFILE"]).print_stats(30)
    Project.objects.filter(slug=PROJECT).delete()
    user.delete()
    print(f"BENCH calibration_index_queries value={n_queries} unit=queries bound=20 "
          f"ratio={n_queries / 20:.3f}")
    print(f"BENCH calibration_index_p95_ms value={p95:.1f} unit=ms bound=300 "
          f"ratio={p95 / 300:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
