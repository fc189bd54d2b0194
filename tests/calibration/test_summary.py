"""The judge x criterion summary: the same figures as each judge's full report, in a pinned
number of queries; the index page and the rubric page's fragment with their permissions,
sorting, escaping and recorded looks."""

from __future__ import annotations

import random
import re

import pytest
from django.urls import reverse

from apps.calibration.models import TestLook
from apps.calibration.report import Thresholds, calibration_report
from apps.calibration.summary import judge_matrix
from apps.judging.models import (
    JudgeRun,
    Judgment,
    JudgmentStatus,
    RunKind,
    RunStatus,
    Verdict,
)
from tests.calibration.worlds import make_world, ordinal_spec

pytestmark = pytest.mark.django_db
KEYS = ("c1", "c2", "c3", "c4", "c5", "c6")
GATE = Thresholds(min_n=20, min_kappa_lower=0.2, min_kappa=0.5, min_human_alpha=0.0)


def _world(personas, *, judges: int = 4, n: int = 120, name_of=lambda j: f"judge-{j:02d}"):
    world = make_world(personas.project, n=n, spec=ordinal_spec(KEYS, levels=4))
    rng = random.Random(1)
    truth = {(k, key): rng.randint(1, 4) for k in range(n) for key in KEYS}
    world.labels([(k, key, who, truth[(k, key)] if rng.random() < 0.85 else rng.randint(1, 4))
                  for k in range(n) for key in KEYS for who in ("ann1", "ann2")])
    runs = []
    for j in range(judges):
        skill = 0.3 + 0.6 * j / max(1, judges - 1)
        run = JudgeRun.objects.create(project=world.project, rubric_version=world.version,
                                      dataset=world.dataset, name=name_of(j),
                                      kind=RunKind.IMPORTED, status=RunStatus.COMPLETED)
        Verdict.objects.bulk_create(
            Verdict(run=run, item=world.items[k], criterion_key=key,
                    value=str(truth[(k, key)] if rng.random() < skill else rng.randint(1, 4)))
            for k in range(n) for key in KEYS if (k + j) % 17)  # each misses a few items
        runs.append(run)
    return world, runs


def test_each_cell_is_the_judges_own_report(personas):
    world, runs = _world(personas)
    matrix = judge_matrix(version=world.version, dataset=world.dataset, thresholds=GATE)
    assert len(matrix["rows"]) == 4 and [c["key"] for c in matrix["criteria"]] == list(KEYS)
    assert matrix["scope"]["part"] == "test" and matrix["scope"]["decides_gate"]
    passed = set()
    for row in matrix["rows"]:
        report = calibration_report(version=world.version, dataset=world.dataset, run=row.run,
                                    thresholds=GATE)
        for key in KEYS:
            cell, full = row.cells[key], report["criteria"][key]
            assert cell.n == full["n"] > 0
            assert cell.kappa == pytest.approx(full["kappa"], abs=1e-6)
            assert [cell.low, cell.high] == pytest.approx(full["kappa_ci95"], abs=1e-6)
            assert cell.gate == full["gate"]
            assert cell.words == full["kappa_words"]
        assert row.passed == report["gate"]["passed"]
        assert row.reasons == report["gate"]["reasons"]
        if row.passed:
            passed.add(row.run.name)
    assert passed and len(passed) < 4  # the best judges pass, the worst do not


def test_sorting_by_a_criterion_name_or_failed_calls(personas):
    world, runs = _world(personas)
    by_c2 = judge_matrix(version=world.version, dataset=world.dataset, thresholds=GATE,
                         sort="c2", record=False)["rows"]
    kappas = [r.cells["c2"].kappa for r in by_c2]
    assert kappas == sorted(kappas, reverse=True)
    up = judge_matrix(version=world.version, dataset=world.dataset, thresholds=GATE,
                      sort="c2", descending=False, record=False)["rows"]
    assert [r.cells["c2"].kappa for r in up] == sorted(kappas)
    names = judge_matrix(version=world.version, dataset=world.dataset, thresholds=GATE,
                         sort="name", descending=False, record=False)["rows"]
    assert [r.run.name for r in names] == sorted(r.name for r in runs)


def test_the_failed_call_share_of_a_live_run(personas):
    world, runs = _world(personas, judges=1)
    live = JudgeRun.objects.create(project=world.project, rubric_version=world.version,
                                   dataset=world.dataset, name="live", kind=RunKind.LIVE,
                                   status=RunStatus.COMPLETED, model="openai/x")
    statuses = [JudgmentStatus.DONE] * 7 + [JudgmentStatus.FAILED, JudgmentStatus.INVALID,
                                            JudgmentStatus.PENDING]
    Judgment.objects.bulk_create(Judgment(run=live, item=world.items[k], criterion_key="c1",
                                          status=s) for k, s in enumerate(statuses))
    rows = {r.run.name: r for r in judge_matrix(version=world.version, dataset=world.dataset,
                                                thresholds=GATE, record=False)["rows"]}
    assert (rows["live"].failed, rows["live"].calls) == (2, 9)
    assert rows["live"].failed_share == pytest.approx(2 / 9)
    assert rows["judge-00"].failed_share is None  # imported: no calls were made here


def test_the_index_shows_the_table_and_forest_plots_in_few_queries(
        personas, django_assert_max_num_queries):
    world, runs = _world(personas, judges=20, n=200)
    client = personas.client("editor")
    url = reverse("calibration_index", args=[personas.project.slug])
    client.get(url)  # the first use draws the split
    with django_assert_max_num_queries(20):
        response = client.get(url)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('<tr>') >= 21 and 'class="forest-plot"' in html
    assert html.count('<figure class="forest">') == 6
    assert "Held-out test items only" in html
    # Every judge shown is a look at test results, recorded once per page view.
    assert TestLook.objects.filter(source="index").count() == 40


def test_index_sort_links_and_aria_sort(personas):
    world, runs = _world(personas)
    client = personas.client("owner")
    url = reverse("calibration_index", args=[personas.project.slug])
    html = client.get(url, {"rubric": "r", "sort": "c3", "dir": "asc"}).content.decode()
    assert 'aria-sort="ascending"' in html
    assert re.search(r'href="[^"]*sort=c3&amp;dir=desc"', html)  # the next click flips it
    names = re.findall(r'<th scope="row"><a href="[^"]+">(judge-\d\d)</a>', html)
    expected = [r.run.name for r in judge_matrix(
        version=world.version, dataset=world.dataset, thresholds=Thresholds.for_project(
            personas.project), sort="c3", descending=False, record=False)["rows"]]
    assert names == expected
    # An unknown sort key is ignored rather than an error.
    assert client.get(url, {"sort": "<script>"}).status_code == 200


def test_judge_names_are_escaped_in_the_table_and_the_plot(personas):
    _world(personas, judges=2, name_of=lambda j: f'<script>alert({j})</script><img src=x>')
    html = personas.client("editor").get(
        reverse("calibration_index", args=[personas.project.slug])).content.decode()
    assert "<script>alert(" not in html and "<img src=x>" not in html
    assert "&lt;script&gt;alert(0)&lt;/script&gt;" in html


def test_index_and_fragment_permissions(personas):
    _world(personas, judges=2)
    index = reverse("calibration_index", args=[personas.project.slug])
    fragment = reverse("calibration_summary", args=[personas.project.slug, "r"])
    for who in ("owner", "editor"):
        assert personas.client(who).get(index).status_code == 200
        page = personas.client(who).get(fragment)
        assert page.status_code == 200 and 'id="judge-matrix"' in page.content.decode()
        assert "<html" not in page.content.decode()
    assert personas.client("labeller").get(index).status_code == 403
    assert personas.client("labeller").get(fragment).status_code == 403
    assert personas.client("outsider").get(index).status_code == 404
    assert personas.client("outsider").get(fragment).status_code == 404
    assert personas.client(None).get(index).status_code == 302  # to the sign-in page
    assert personas.client("editor").get(reverse(
        "calibration_summary", args=[personas.project.slug, "nope"])).status_code == 404
    assert personas.client("editor").post(index).status_code == 405
    assert personas.client("editor").post(fragment).status_code == 405


def test_the_index_without_judges_or_rubrics_says_what_to_do(personas):
    client = personas.client("editor")
    url = reverse("calibration_index", args=[personas.project.slug])
    assert "No rubric yet" in client.get(url).content.decode()
    make_world(personas.project, n=3)
    html = client.get(url).content.decode()
    assert "No judge has finished with R v1 on d" in html and "Start a judge run" in html


def test_the_rubric_page_loads_the_table(personas):
    _world(personas, judges=1)
    html = personas.client("editor").get(
        reverse("rubric_detail", args=[personas.project.slug, "r"])).content.decode()
    assert 'hx-get="/p/acme/calibration/r/judges/"' in html
    assert 'href="/p/acme/calibration/?rubric=r"' in html  # without JavaScript: a link
