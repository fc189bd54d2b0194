"""The project overview: the loop's state per rubric and the one next step, from an empty
project to an exported judge."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.exports.services import judge_export
from apps.projects.models import Project
from apps.rubrics import content as content_mod
from apps.rubrics.services import rubric_create, rubric_import
from tests.calibration.worlds import make_world, ordinal_spec

pytestmark = pytest.mark.django_db


def _home(personas, who="editor") -> str:
    response = personas.client(who).get(reverse("project_home", args=[personas.project.slug]))
    assert response.status_code == 200
    return response.content.decode()


def _next(html: str) -> str:
    start = html.index('<p class="next-step">')
    return html[start:html.index("</p>", start)]


def test_the_next_step_walks_the_loop(personas):
    Project.objects.filter(pk=personas.project.pk).update(gate_min_n=10)
    personas.project.refresh_from_db()
    assert "Write a rubric" in _next(_home(personas))
    rubric_create(project=personas.project, name="<b>Draft</b> rubric")
    html = _home(personas)
    assert "Publish version 1 of &lt;b&gt;Draft&lt;/b&gt; rubric" in _next(html)
    assert "<b>Draft</b>" not in html
    world = make_world(personas.project, n=40)
    html = _home(personas)
    # Labels first: 34 labelled items give a held-out test split of n = 10 at 30 %.
    assert "Label items of d: 0 labelled, 34 give a held-out test split" in _next(html)
    world.labels([(k, "quality", a, k % 3 + 1) for k in range(40) for a in ("x", "y")])
    assert "Run a judge with R v1 on d" in _next(_home(personas))
    bad = world.judge("coin", {k: 1 for k in range(40)})
    html = _home(personas)
    assert "No judge passes the gate" in _next(html) and "✗ fails" in html
    good = world.judge("good", {k: k % 3 + 1 for k in range(40)})
    html = _home(personas)
    # Imported verdicts pass the gate, but a bundle needs the model run here with this prompt.
    assert "good passes the gate with imported verdicts" in _next(html)
    assert "Run the judge here" in _next(html) and "✓ passes" in html
    from apps.judging.models import JudgeRun, RunKind

    JudgeRun.objects.filter(pk=good.pk).update(kind=RunKind.LIVE, model="openai/fake-judge")
    html = _home(personas)
    assert "good passes the gate: export it" in _next(html)
    assert f"?run={good.pk}" in _next(html)
    judge_export(run=good, fmt="json", model="openai/fake-judge", force=True)
    html = _home(personas)
    assert "Exported good" in _next(html)
    assert bad.pk  # both judges were looked at; the best one is shown
    assert "80 labels on d" in html


def test_labellers_do_not_see_the_loop(personas):
    world = make_world(personas.project, n=3)
    world.judge("j", {0: 1})
    assert "Where the loop stands" not in _home(personas, "labeller")
    assert "Where the loop stands" in _home(personas, "owner")


def test_a_rubric_whose_mode_has_no_dataset_asks_for_one(personas):
    spec = ordinal_spec(slug="solo")
    rubric_import(project=personas.project, content=content_mod.validate(spec), publish=True,
                  note="v1")
    assert "Upload a pointwise dataset" in _next(_home(personas))
