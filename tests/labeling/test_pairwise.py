"""Pairwise items are shown in a per-(item, annotator) order; what was shown where is recorded
on the claim and on each label, and the answer is mapped back to the item's A / B."""

from __future__ import annotations

import re

import pytest

from apps.labeling.claims import label_claim_next, shown_order_for
from apps.labeling.models import Assignment, HumanLabel
from tests.labeling.helpers import HTMX, make_session, url

pytestmark = pytest.mark.django_db


def _claim_with_order(session, user, order: str):
    """Claim items until one is shown in `order`, skipping the others."""
    from apps.labeling.services import label_skip

    while True:
        claim = label_claim_next(session=session, user=user)
        assert claim is not None, f"no item shown {order}"
        if claim.shown_order == order:
            return claim
        label_skip(session=session, user=user, assignment_id=claim.pk, reason="test")


def test_both_orders_occur_and_each_is_stable_per_item_and_annotator(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=40,
                           pairwise=True)
    orders = {shown_order_for(session.pk, item_id, personas.labeller.pk)
              for item_id in session.pool.values_list("item_id", flat=True)}
    assert orders == {"AB", "BA"}
    claim = label_claim_next(session=session, user=personas.labeller)
    assert claim.shown_order == shown_order_for(session.pk, claim.session_item.item_id,
                                                personas.labeller.pk)


@pytest.mark.parametrize("order,answer,stored", [
    ("AB", "left", "A"), ("AB", "right", "B"), ("BA", "left", "B"), ("BA", "right", "A"),
    ("BA", "tie", "tie"),
])
def test_the_screen_shows_the_recorded_order_and_maps_the_answer_back(personas, order, answer,
                                                                      stored):
    session = make_session(personas.project, assignees=[personas.labeller], items=40,
                           pairwise=True)
    claim = _claim_with_order(session, personas.labeller, order)
    n = claim.session_item.item.external_id[1:]
    body = personas.client("labeller").get(url("label_screen", session)).content.decode()
    left, right = ("first", "second") if order == "AB" else ("second", "first")
    assert re.search(rf"<h3>Left \(A\)</h3>.*{left} answer {n}.*<h3>Right \(B\)</h3>.*"
                     rf"{right} answer {n}",
                     body, re.S)
    assert "Left (A) is better" in body and "Right (B) is better" in body
    # The anchors speak of A and B as the buttons and headings do.
    assert "Response A is better." in body
    response = personas.client("labeller").post(url("label_screen", session), {
        "assignment": claim.pk, "c_overall": answer}, **HTMX)
    assert response.status_code == 200
    label = HumanLabel.objects.get(session=session, item_id=claim.session_item.item_id)
    assert label.value == stored and label.shown_order == order
    assert Assignment.objects.get(pk=claim.pk).shown_order == order


def test_history_and_edit_speak_in_the_annotators_own_sides(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=40,
                           pairwise=True)
    claim = _claim_with_order(session, personas.labeller, "BA")
    client = personas.client("labeller")
    client.post(url("label_screen", session), {"assignment": claim.pk, "c_overall": "left"})
    assert HumanLabel.objects.get(session=session).value == "B"
    history = client.get(url("label_history", session)).content.decode()
    assert "Overall = Left (A) is better" in history
    edit = url("label_edit", session, item_id=claim.session_item.item_id)
    assert 'value="left" data-digit="1" checked' in client.get(edit).content.decode()
    client.post(edit, {"c_overall": "right"})
    assert HumanLabel.objects.get(session=session).value == "A"
