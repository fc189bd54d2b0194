"""Server time of the item list page over a 100,000-item dataset, p95 over 200 requests.
Not a test; run ``.venv/bin/python -m benchmarks.bench_item_list``.

The dataset is made by the importer (every other item carries a human label and an imported
verdict, so both per-item counters do real work). The page is requested in-process through
Django's test Client, so the time is the whole server side (middleware, session, the project
loader, the queries, the template) without a network. Pages are spread over 1..2,000, without a
search. The query count is pinned by tests/datasets/test_views.py, not here.

The last line is machine-readable: ``BENCH item_list_p95_ms ...``.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also runs as a plain script

from benchmarks.bench_import import (  # noqa: E402
    bench_project,
    delete_project,
    environment,
    prepare_database,
    setup_django,
    write_jsonl,
)

N_ITEMS = 100_000
N_REQUESTS = 200
WARM_UP = 10
BOUND_MS = 100.0
SLUG = "bench-item-list"

RUBRIC = {
    "rubric": "bench",
    "name": "Bench",
    "mode": "pointwise",
    "criteria": [
        {"key": "correct", "name": "Correct", "weight": 1,
         "scale": {"type": "ordinal", "levels": [
             {"value": v, "label": str(v), "anchor": f"level {v}"} for v in (1, 2, 3)]}},
    ],
}


def riders(i: int) -> dict:
    if i % 2:
        return {}
    return {
        "labels": [{"annotator": "ann", "criterion": "correct", "value": 1 + i % 3}],
        "judgments": [{"judge": "gpt", "criterion": "correct", "value": 1 + (i // 2) % 3}],
    }


def build_dataset(project, user):
    from apps.intake.services import dataset_file_import
    from apps.rubrics import content as content_mod
    from apps.rubrics.services import rubric_import

    rubric_import(project=project, content=content_mod.validate(RUBRIC), publish=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "items.jsonl"
        write_jsonl(path, N_ITEMS, riders=riders)
        start = time.perf_counter()
        with path.open("rb") as fh:
            result = dataset_file_import(project=project, dataset_name="bench-100k", stream=fh,
                                         fmt="jsonl", user=user)
    if not result.ok:
        raise SystemExit(f"import failed: {result.problems[:5]}")
    print(f"setup: {result.summary()} in {time.perf_counter() - start:.1f} s")
    return result.dataset


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q of the values at or below."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def main() -> None:
    env = environment()
    prepare_database(env)
    setup_django(env)
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from apps.datasets.models import Item
    from apps.judging.models import Verdict
    from apps.labeling.models import HumanLabel

    project, user = bench_project(SLUG)
    try:
        dataset = build_dataset(project, user)
        if connection.vendor == "postgresql":
            # Fresh planner statistics, as autovacuum gives a table after 100,000 new rows.
            tables = ", ".join(m._meta.db_table for m in (Item, HumanLabel, Verdict))
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {tables}")
        client = Client()
        client.force_login(user)
        url = reverse("dataset_detail", kwargs={"slug": SLUG, "dataset_id": dataset.pk})
        last_page = -(-N_ITEMS // 50)
        pages = [1 + (i * (last_page - 1)) // (N_REQUESTS - 1) for i in range(N_REQUESTS)]
        for page in pages[:WARM_UP]:
            client.get(url, {"page": page})
        times_ms = []
        for page in pages:
            start = time.perf_counter()
            response = client.get(url, {"page": page})
            times_ms.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200 or response.content.count(b"/items/") < 50:
                raise SystemExit(f"page {page}: status {response.status_code}, short page")
        # Not part of the figure: a search that matches nothing reads every item's text.
        search_ms = []
        for word in ("zebra", "quokka", "narwhal"):
            start = time.perf_counter()
            client.get(url, {"q": word})
            search_ms.append((time.perf_counter() - start) * 1000)
        print(f"for information: a search without matches takes {statistics.median(search_ms):.0f} "
              "ms (median of 3)")
    finally:
        delete_project(SLUG)
    p95 = percentile(times_ms, 0.95)
    print(f"{N_REQUESTS} requests over pages {pages[0]}..{pages[-1]}: median "
          f"{statistics.median(times_ms):.1f} ms, max {max(times_ms):.1f} ms, "
          f"database {connection.vendor}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"BENCH item_list_p95_ms value={p95:.2f} unit=ms bound={BOUND_MS:g} "
          f"ratio={p95 / BOUND_MS:.3f}")


if __name__ == "__main__":
    main()
