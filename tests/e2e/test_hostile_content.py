"""Hostile text from users and models, shown in a real browser: it stays text. No dialog opens,
no request leaves for a URL the text names, no javascript: link exists."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.datasets.models import Item
from apps.exports.models import Export
from apps.judging.models import Judgment, Verdict
from apps.labeling.models import HumanLabel
from apps.rubrics.models import Rubric
from tests.world import build_world

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

HOSTILE = (
    '<script>alert("script")</script>'
    '<img src=x onerror="alert(\'img\')">'
    '<div hx-get="/evil-htmx" hx-trigger="load">htmx</div>'
    '<a href="javascript:alert(\'link\')">click me</a>'
    '[markdown link](javascript:alert("md")) ![img](/evil-image.png)'
    '<svg onload="alert(\'svg\')"></svg>'
)


@pytest.fixture
def hostile_world(personas):
    world = build_world(personas.project, owner=personas.owner, member=personas.editor)
    Item.objects.filter(dataset=world.dataset).update(prompt=HOSTILE, response=HOSTILE,
                                                      reference=HOSTILE)
    Rubric.objects.filter(pk=world.rubric.pk).update(name=("R " + HOSTILE)[:120])
    labels = HumanLabel.objects.filter(item__dataset=world.dataset)
    labels.update(comment=HOSTILE)
    HumanLabel.objects.filter(pk=labels.first().pk).update(annotator="ann<b>x</b>")
    Verdict.objects.filter(run=world.imported_run).update(rationale=HOSTILE)
    # The world's live run: one answered judgment with a hostile rationale and raw output.
    Judgment.objects.filter(run=world.run).update(status="done", value="1",
                                                  rationale=HOSTILE, raw_output=HOSTILE)
    Verdict.objects.create(run=world.run, item=world.item, criterion_key="correct", value="1",
                           rationale=HOSTILE)
    # An export's provenance: the judge's and model's names, the dataset in its report.
    export = Export.objects.get(pk=world.export.pk)
    report = {**export.report, "dataset": HOSTILE}
    Export.objects.filter(pk=export.pk).update(judge_name=HOSTILE[:120], model=HOSTILE[:200],
                                               report=report)
    return world


def test_hostile_text_is_shown_as_text_everywhere(personas, hostile_world, watched):
    w = hostile_world
    slug = w.project.slug
    pages = [
        reverse("project_home", args=[slug]),
        reverse("rubric_list", args=[slug]),
        reverse("rubric_detail", args=[slug, w.rubric.slug]),
        reverse("rubric_preview", args=[slug, w.rubric.slug]) + f"?dataset={w.dataset.pk}",
        reverse("dataset_detail", args=[slug, w.dataset.pk]),
        reverse("item_detail", args=[slug, w.dataset.pk, w.item.pk]),
        reverse("run_detail", args=[slug, w.run.pk]),
        reverse("judgment_raw", args=[slug, w.run.pk, w.judgment.pk]),
        reverse("calibration_dashboard", args=[slug, w.rubric.slug])
        + f"?dataset={w.dataset.pk}&judge={w.imported_run.pk}",
        reverse("export_list", args=[slug]),
        reverse("export_detail", args=[slug, w.export.pk]),
    ]
    watched.sign_in("owner")
    for path in pages:
        response = watched.goto(path)
        assert response.status == 200, path
        watched.page.wait_for_timeout(300)  # give htmx's load triggers their chance
        assert watched.page.locator("a[href^='javascript:']").count() == 0, path
        body = watched.page.inner_text("body")
        assert "<script>" in body or "alert(" in body, path  # the text is visible as text
    assert watched.dialogs == []
    evil = [url for url in watched.requests if "evil" in url or url.endswith("/x")]
    assert evil == []
    foreign = [url for url in watched.requests if not url.startswith(watched.origin)]
    assert foreign == []
