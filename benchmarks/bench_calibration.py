"""The full calibration report for 10,000 items x 5 criteria x 3 annotators, 1,000 bootstrap
resamples per criterion, from the database (PostgreSQL by default), and the dashboard's query
count on the same data. Not a test; run ``.venv/bin/python -m benchmarks.bench_calibration``.

BENCH calibration_10k_s (bound 2 s) and BENCH calibration_page_queries (bound 20).
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_import import prepare_database  # noqa: E402

N_ITEMS, N_CRITERIA, ANNOTATORS = 10_000, 5, ("ann1", "ann2", "ann3")
PROJECT = "bench-calibration"


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
    project = Project.objects.create(slug=PROJECT, name="Calibration benchmark")
    keys = [f"c{i}" for i in range(N_CRITERIA)]
    spec = {"rubric": "bench", "name": "Bench", "mode": "pointwise", "criteria": [
        {"key": k, "weight": 1, "scale": {"type": "ordinal", "levels": [
            {"value": v, "anchor": f"{k} {v}"} for v in range(1, 6)]}} for k in keys]}
    _, version, _ = rubric_import(project=project, content=content_mod.validate(spec),
                                  publish=True, note="bench")
    signature = scales.scale_signature(spec["criteria"][0]["scale"])
    dataset = Dataset.objects.create(project=project, name="bench", kind=Kind.POINTWISE,
                                     item_count=N_ITEMS)
    items = Item.objects.bulk_create(
        (Item(dataset=dataset, external_id=str(i), position=i, prompt="q", response="a" * (i % 97))
         for i in range(N_ITEMS)), batch_size=5000)
    run = JudgeRun.objects.create(project=project, rubric_version=version, dataset=dataset,
                                  name="bench-judge", kind=RunKind.IMPORTED,
                                  status=RunStatus.COMPLETED)
    rng = random.Random(0)
    labels, verdicts = [], []
    for item in items:
        for key in keys:
            truth = rng.randint(1, 5)
            for name in ANNOTATORS:
                value = truth if rng.random() < 0.7 else rng.randint(1, 5)
                labels.append(HumanLabel(item_id=item.pk, criterion_key=key, annotator=name,
                                         scale_signature=signature, value=str(value),
                                         source=LabelSource.IMPORT))
            judged = truth if rng.random() < 0.6 else rng.randint(1, 5)
            verdicts.append(Verdict(run=run, item_id=item.pk, criterion_key=key,
                                    value=str(judged)))
    HumanLabel.objects.bulk_create(labels, batch_size=10000)
    Verdict.objects.bulk_create(verdicts, batch_size=10000)
    print(f"{len(labels):,} labels and {len(verdicts):,} verdicts in place", flush=True)

    timings = []
    for _ in range(3):
        started = time.perf_counter()
        report = calibration_report(version=version, dataset=dataset, run=run)
        timings.append(time.perf_counter() - started)
    assert all(c["n"] > 0 for c in report["criteria"].values())
    print("report times: " + ", ".join(f"{t:.2f}s" for t in timings), flush=True)

    setup_test_environment()
    user = get_user_model().objects.create_user(username=f"bench-{time.time_ns()}")
    Membership.objects.create(project=project, user=user, role=Role.EDITOR)
    client = Client()
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(f"/p/{PROJECT}/calibration/bench/")
    assert page.status_code == 200, page.status_code
    Project.objects.filter(slug=PROJECT).delete()
    user.delete()
    best = min(timings)
    print(f"BENCH calibration_page_queries value={len(queries)} unit=queries bound=20 "
          f"ratio={len(queries) / 20:.3f}")
    print(f"BENCH calibration_10k_s value={best:.3f} unit=s bound=2 ratio={best / 2:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
