"""axe-core on the main pages: no serious or critical findings; fields labelled; focus visible."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.e2e.axe import serious_violations
from tests.world import build_world

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(personas):
    return build_world(personas.project, owner=personas.owner, member=personas.editor)


def _main_pages(w) -> list[str]:
    slug = w.project.slug
    return [
        reverse("project_list"),
        reverse("project_home", args=[slug]),
        reverse("member_list", args=[slug]),
        reverse("rubric_list", args=[slug]),
        reverse("rubric_detail", args=[slug, w.rubric.slug]),
        reverse("criterion_new", args=[slug, w.rubric.slug]),
        reverse("version_compare", args=[slug, w.rubric.slug]),
        reverse("dataset_list", args=[slug]),
        reverse("dataset_upload", args=[slug]),
        reverse("dataset_detail", args=[slug, w.dataset.pk]),
        reverse("item_detail", args=[slug, w.dataset.pk, w.item.pk]),
        reverse("run_list", args=[slug]),
        reverse("run_start", args=[slug]),
        reverse("run_detail", args=[slug, w.run.pk]),
        reverse("calibration_dashboard", args=[slug, w.rubric.slug])
        + f"?dataset={w.dataset.pk}&judge={w.imported_run.pk}",
        reverse("export_list", args=[slug]),
        reverse("export_create", args=[slug]),
        reverse("calibration_index", args=[slug]),
        reverse("workbench", args=[slug, w.rubric.slug]) + f"?dataset={w.dataset.pk}"
        f"&judge={w.imported_run.pk}",
    ]


def test_main_pages_have_no_serious_accessibility_findings(world, watched):
    watched.sign_in("owner")
    findings = {}
    for path in _main_pages(world):
        assert watched.goto(path).status == 200, path
        watched.page.wait_for_timeout(200)
        found = serious_violations(watched.page)
        if found:
            findings[path] = found
    assert findings == {}


def test_sign_in_page_is_accessible_and_keyboard_usable(watched):
    watched.goto("/accounts/login/")
    assert serious_violations(watched.page) == []
    page = watched.page
    # Everything reachable by keyboard: Tab reaches the fields and the button, with a visible
    # focus indicator (the outline our stylesheet gives :focus-visible).
    reached = []
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.name || document.activeElement"
                                     ".textContent.trim()"))
    assert "username" in reached and "password" in reached
    page.focus("input[name=username]")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle + ' ' + "
                            "getComputedStyle(document.activeElement).boxShadow")
    assert outline.strip() not in ("none none", "")


def test_labelling_pages_have_no_serious_accessibility_findings(world, watched):
    """The session pages, the labelling screen at a wide viewport (item and rubric side by side)
    and adjudication with a real disagreement on it."""
    from apps.labeling.models import HumanLabel, LabelSource

    first = HumanLabel.objects.filter(session=world.session).first()
    HumanLabel.objects.create(item_id=first.item_id, criterion_key=first.criterion_key,
                              scale_signature=first.scale_signature, annotator="other",
                              value="1", comment="<b>not so</b>", source=LabelSource.SCREEN,
                              session=world.session)
    slug = world.project.slug
    watched.sign_in("owner")
    watched.page.set_viewport_size({"width": 1440, "height": 900})
    findings = {}
    for name in ("session_list", "session_detail", "label_screen", "adjudicate"):
        args = [slug] if name == "session_list" else [slug, world.session.pk]
        path = reverse(name, args=args)
        assert watched.goto(path).status == 200, path
        watched.page.wait_for_timeout(200)
        found = serious_violations(watched.page)
        if found:
            findings[path] = found
    assert "not so" in watched.page.inner_text("main")  # the adjudication row is there
    assert findings == {}
