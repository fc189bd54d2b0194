"""Blind labelling: walk every URL a labeller may open (the sweep's LABELLER_ALLOWED pages under
/labelling/), as pages and as htmx partials, with a judge run and another annotator's labels in
the database, and find no verdict, no rationale, no judge name and no other annotator's name,
comment or value anywhere. Everything else a labeller could try is 403 (tests/test_url_sweep.py).
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from apps.judging.models import JudgeRun, RunKind, RunStatus, Verdict
from apps.labeling.claims import label_claim_next
from apps.labeling.models import HumanLabel
from apps.labeling.services import label_submit
from tests.factories import MembershipFactory, UserFactory
from tests.labeling.helpers import HTMX, make_dataset, make_session, make_version
from tests.test_url_sweep import LABELLER_ALLOWED, PATTERNS

pytestmark = pytest.mark.django_db

# A rubric whose values are words, so a leaked value can be searched for.
TASTE = {
    "rubric": "taste", "name": "Taste", "mode": "pointwise",
    "criteria": [{"key": "flavour", "name": "Flavour", "weight": 1, "scale": {
        "type": "categorical", "levels": [
            {"value": "delicious", "label": "Delicious", "anchor": "Would eat again.",
             "score": 1.0},
            {"value": "bland", "label": "Bland", "anchor": "Edible.", "score": 0.5},
            {"value": "inedible", "label": "Inedible", "anchor": "No.", "score": 0.0}]}}],
}
SECRETS = ["zed-the-other", "zed-secret-comment", "judge-secret-rationale",
           "secret-judge-name", "RAW-JUDGE-OUTPUT"]


@pytest.fixture
def blind_world(personas):
    zed = UserFactory(username="zed-the-other")
    MembershipFactory(project=personas.project, user=zed, role="labeller")
    version = make_version(personas.project, TASTE)
    dataset = make_dataset(personas.project, items=3)
    session = make_session(personas.project, assignees=[personas.labeller, zed], overlap=2,
                           version=version, dataset=dataset)
    # zed labels every item "inedible" with a comment; the labeller labels the first item.
    for _ in range(3):
        claim = label_claim_next(session=session, user=zed)
        label_submit(session=session, user=zed, assignment_id=claim.pk,
                     values={"flavour": "inedible"}, comment="zed-secret-comment")
    claim = label_claim_next(session=session, user=personas.labeller)
    label_submit(session=session, user=personas.labeller, assignment_id=claim.pk,
                 values={"flavour": "delicious"})
    run = JudgeRun.objects.create(project=personas.project, rubric_version=version,
                                  dataset=dataset, name="secret-judge-name",
                                  kind=RunKind.IMPORTED, status=RunStatus.COMPLETED)
    for item in dataset.items.all():
        Verdict.objects.create(run=run, item=item, criterion_key="flavour", value="inedible",
                               rationale="judge-secret-rationale RAW-JUDGE-OUTPUT")
    return session, claim.session_item.item_id


def _labelling_urls(session, item_id) -> list[str]:
    kwargs = {"slug": "acme", "session_id": session.pk, "item_id": item_id}
    urls = []
    for name, route in PATTERNS:
        if name in LABELLER_ALLOWED and "/labelling/" in route:
            needed = {k: v for k, v in kwargs.items() if f":{k}>" in route}
            urls.append(reverse(name, kwargs=needed))
    return urls


def _body(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def test_no_labelling_page_or_partial_shows_verdicts_or_other_annotators(personas,
                                                                        blind_world):
    session, item_id = blind_world
    client = personas.client("labeller")
    urls = _labelling_urls(session, item_id)
    assert len(urls) >= 6  # list, screen, skip, undo, history, edit, export
    seen = 0
    for address in urls:
        for extra in ({}, HTMX):
            for query in ("", "?format=csv"):
                response = client.get(address + query, **extra)
                if response.status_code == 405:
                    continue
                assert response.status_code == 200, address
                body = _body(response)
                seen += 1
                for secret in SECRETS:
                    assert secret not in body, (address, secret)
    assert seen >= 12


def test_the_screen_never_preselects_another_annotators_value(personas, blind_world):
    session, _ = blind_world
    # The labeller's next item was labelled "inedible" by zed: nothing may be checked.
    body = personas.client("labeller").get(reverse("label_screen", kwargs={
        "slug": "acme", "session_id": session.pk})).content.decode()
    assert "Question 1?" in body and " checked" not in body


def test_the_labellers_export_and_history_hold_only_their_own_values(personas, blind_world):
    session, _ = blind_world
    client = personas.client("labeller")
    export = _body(client.get(reverse("session_export", kwargs={
        "slug": "acme", "session_id": session.pk})))
    rows = [json.loads(line) for line in export.splitlines()]
    assert [label["value"] for row in rows for label in row["labels"]] == ["delicious"]
    history = client.get(reverse("label_history", kwargs={
        "slug": "acme", "session_id": session.pk})).content.decode()
    assert "Delicious" in history and "inedible" not in history.lower()
    assert HumanLabel.objects.filter(session=session).count() == 4  # zed's are there


def test_posts_as_a_labeller_show_nothing_of_others_either(personas, blind_world):
    session, _ = blind_world
    client = personas.client("labeller")
    screen = reverse("label_screen", kwargs={"slug": "acme", "session_id": session.pk})
    client.get(screen)
    claim = session.assignments.get(user=personas.labeller, status="claimed")
    for response in (
        client.post(screen, {"assignment": claim.pk}, **HTMX),  # 422: missing value
        client.post(screen, {"assignment": claim.pk, "c_flavour": "bland"}, **HTMX),
        client.post(reverse("label_undo", kwargs={"slug": "acme", "session_id": session.pk}),
                    **HTMX),
    ):
        body = response.content.decode()
        for secret in SECRETS:
            assert secret not in body
