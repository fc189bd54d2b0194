"""Adjudication worth using: the gold value starts blank (the majority is marked, never chosen
for the owner), level names beside values, texts as the labelling screen shows them, the side
each annotator saw (pairwise), and saving by htmx swaps the row in place and brings the next
disagreement, in a fixed number of queries."""

from __future__ import annotations

import re

import pytest

from apps.datasets.models import Item
from apps.labeling.adjudication import Cursor, disagreement_counts, disagreement_page
from apps.labeling.models import GoldLabel, HumanLabel, LabelSource
from tests.labeling.helpers import HTMX, make_session, url

pytestmark = pytest.mark.django_db

SIGNATURES = {"correct": "ordinal:1,2,3", "safe": "binary:0,1", "overall": "pairwise:A,B,tie"}


def _put(session, annotator: str, values: dict[int, object], key: str = "correct",
         comment: str = "", order: str = ""):
    items = list(session.pool.order_by("position").values_list("item_id", flat=True))
    HumanLabel.objects.bulk_create(
        HumanLabel(item_id=items[i], criterion_key=key, scale_signature=SIGNATURES[key],
                   annotator=annotator, value=str(v), source=LabelSource.SCREEN,
                   session=session, comment=comment, shown_order=order)
        for i, v in values.items())


@pytest.fixture
def split(personas):
    """Six items; ann and bob disagree on 'correct' for items 0, 2, 3, 5, cat sides with ann
    on item 0 (a majority) and is absent elsewhere (a tie)."""
    session = make_session(personas.project, assignees=[personas.labeller], items=6)
    _put(session, "ann", {0: 1, 1: 2, 2: 3, 3: 1, 4: 2, 5: 3}, comment="<b>too short</b>")
    _put(session, "bob", {0: 3, 1: 2, 2: 1, 3: 2, 4: 2, 5: 1})
    _put(session, "cat", {0: 1})
    return session


def _items(session):
    return list(session.pool.order_by("position").values_list("item_id", flat=True))


def test_the_gold_value_starts_blank_with_the_majority_marked_and_level_names(personas, split):
    body = personas.client("owner").get(url("adjudicate", split)).content.decode()
    first = body.split('id="d-')[1]
    assert '<option value="" selected>— choose —</option>' in first
    assert '<option value="1">1 — Wrong (majority)</option>' in first
    assert "Majority of the annotators: <strong>1 — Wrong</strong>" in first
    assert "<strong>3</strong> — Right" in first  # bob's value with its level's name
    assert " selected>1" not in first  # never preselected at a level
    second = body.split('id="d-')[2]
    assert "No majority: the annotators are split evenly." in second
    assert "&lt;b&gt;too short&lt;/b&gt;" in body and "<b>too short" not in body


def test_texts_are_shown_as_on_the_labelling_screen(personas, split):
    Item.objects.filter(pk=_items(split)[0]).update(
        response="Steps:\n```python\nboil(9)\n```\n  indented   spaces")
    body = personas.client("owner").get(url("adjudicate", split)).content.decode()
    assert '<pre class="code"><code>boil(9)\n</code></pre>' in body
    assert '<div class="plain">  indented   spaces</div>' in body
    assert "```" not in body


def test_pairwise_shows_which_side_each_annotator_saw_and_picked(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=1,
                           pairwise=True)
    _put(session, "ann", {0: "A"}, key="overall", order="AB")
    _put(session, "bob", {0: "B"}, key="overall", order="AB")
    _put(session, "cat", {0: "A"}, key="overall", order="BA")
    body = personas.client("owner").get(url("adjudicate", session)).content.decode()
    assert "<h3>Response A</h3>" in body and "<h3>Response B</h3>" in body
    rows = re.findall(r"<tr><td>(\w+)</td><td><strong>(\w+)</strong> — ([^<]+)</td>"
                      r"<td>([^<]+)</td><td>([^<]+)</td>", body)
    assert rows == [("ann", "A", "A is better", "A left, B right", "the left side"),
                    ("bob", "B", "B is better", "A left, B right", "the right side"),
                    ("cat", "A", "A is better", "B left, A right", "the right side")]


def test_saving_by_htmx_swaps_the_row_and_brings_the_next_disagreement(personas, split):
    owner = personas.client("owner")
    page = disagreement_page(split, limit=2)  # the owner's page shows items 0 and 2
    assert [r.item.pk for r in page["rows"]] == [_items(split)[0], _items(split)[2]]
    tail = page["rows"][-1].cursor
    response = owner.post(url("adjudicate", split) + "?show=open", {
        "item": _items(split)[0], "criterion": "correct", "value": "2", "note": "partly",
        "tail": str(tail)}, **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.startswith(f'\n<article class="disagreement saved" id="d-{_items(split)[0]}-')
    assert 'role="status">Saved. Gold: <strong>2 — Partly</strong> — partly' in body
    assert '<option value="2" selected>2 — Partly</option>' in body
    # The next open disagreement after the page's last row (item 3) comes out of band.
    assert '<div hx-swap-oob="beforeend:#rows">' in body
    assert f'id="d-{_items(split)[3]}-correct"' in body
    assert f'value="{_items(split)[3]}.0" hx-swap-oob="true"' in body
    gold = GoldLabel.objects.get(item_id=_items(split)[0], criterion_key="correct")
    assert (gold.value, gold.note, gold.user) == ("2", "partly", personas.owner)
    assert disagreement_counts(split) == {"all": 4, "open": 3}


def test_changing_an_existing_gold_brings_no_extra_row(personas, split):
    owner = personas.client("owner")
    data = {"item": _items(split)[0], "criterion": "correct", "value": "2",
            "tail": f"{_items(split)[2]}.0"}
    owner.post(url("adjudicate", split), data, **HTMX)
    again = owner.post(url("adjudicate", split), {**data, "value": "3"}, **HTMX)
    assert again.status_code == 200 and "hx-swap-oob" not in again.content.decode()
    assert GoldLabel.objects.get(item_id=_items(split)[0]).value == "3"


def test_a_blank_or_bad_gold_value_is_refused_on_its_row(personas, split):
    owner = personas.client("owner")
    for value, said in (("", "Choose a value for the gold label."),
                        ("7", "Correct: &#x27;7&#x27; is not a level of this scale")):
        response = owner.post(url("adjudicate", split), {
            "item": _items(split)[0], "criterion": "correct", "value": value}, **HTMX)
        assert response.status_code == 422
        body = response.content.decode()
        assert 'class="field-error" role="alert"' in body and said in body
        assert body.count("<article") == 1
    plain = owner.post(url("adjudicate", split), {"item": _items(split)[0],
                                                  "criterion": "correct", "value": ""})
    assert plain.status_code == 422 and "Choose a value" in plain.content.decode()
    unknown = owner.post(url("adjudicate", split), {"item": _items(split)[0],
                                                    "criterion": "nope", "value": "1"}, **HTMX)
    assert unknown.status_code == 422 and "Unknown criterion" in unknown.content.decode()
    stranger = owner.post(url("adjudicate", split), {"item": 10**9, "criterion": "correct",
                                                     "value": "1"})
    assert stranger.status_code == 422 and "not in the session" in stranger.content.decode()
    assert not GoldLabel.objects.exists()


def test_a_plain_post_goes_back_to_the_same_row(personas, split):
    response = personas.client("owner").post(
        url("adjudicate", split) + f"?show=all&after={_items(split)[0]}.0",
        {"item": _items(split)[2], "criterion": "correct", "value": "2"})
    assert response.status_code == 302
    assert response["Location"].endswith(
        f"?show=all&after={_items(split)[0]}.0#d-{_items(split)[2]}-correct")


def test_pages_follow_a_cursor_and_open_leaves_out_gold(personas, split):
    GoldLabel.objects.create(item_id=_items(split)[2], criterion_key="correct",
                             scale_signature=SIGNATURES["correct"], value="2")
    page = disagreement_page(split, show="open", limit=2)
    assert [r.item.pk for r in page["rows"]] == [_items(split)[0], _items(split)[3]]
    rest = disagreement_page(split, show="open", after=page["next"], limit=2)
    assert [r.item.pk for r in rest["rows"]] == [_items(split)[5]] and rest["next"] is None
    everything = disagreement_page(split, show="all", limit=10)
    assert len(everything["rows"]) == 4 and everything["rows"][1].gold.value == "2"
    owner = personas.client("owner")
    for junk in ("x", "1.", ".1", "9" * 40 + ".0", "1.99999", "-1.0"):
        assert Cursor.parse(junk) is None
        assert owner.get(url("adjudicate", split), {"after": junk}).status_code == 200
    assert owner.get(url("adjudicate", split), {"show": "<script>"}).status_code == 200


def test_saving_costs_the_same_queries_whatever_the_session_size(personas,
                                                                 django_assert_max_num_queries):
    session = make_session(personas.project, assignees=[personas.labeller], items=300)
    _put(session, "ann", {i: 1 + i % 3 for i in range(300)})
    _put(session, "bob", {i: 1 + (i + 1) % 3 for i in range(300)})
    items = _items(session)
    owner = personas.client("owner")
    owner.get(url("adjudicate", session))  # sign-in and caches warm
    # sign-in 2, loader 2, gold_set 7 (item in session 1; update_or_create 6: its select and
    # insert inside two savepoints), the saved row and the next one 5 (group 2, items, labels,
    # gold). In production the savepoints are one BEGIN/COMMIT less than in a test.
    with django_assert_max_num_queries(16):
        response = owner.post(url("adjudicate", session), {
            "item": items[0], "criterion": "correct", "value": "2",
            "tail": f"{items[24]}.0"}, **HTMX)
    assert response.status_code == 200 and f'id="d-{items[25]}-correct"' in (
        response.content.decode())


def test_who_may_adjudicate(personas, split):
    for who in ("editor", "labeller"):
        assert personas.client(who).get(url("adjudicate", split)).status_code == 403
        assert personas.client(who).post(url("adjudicate", split), {
            "item": _items(split)[0], "criterion": "correct", "value": "1"}).status_code == 403
    assert personas.client("outsider").get(url("adjudicate", split)).status_code == 404
    missing = url("adjudicate", session_id=999999)
    assert personas.client("owner").get(missing).status_code == 404
    assert personas.client("owner").put(url("adjudicate", split)).status_code == 405
    assert not GoldLabel.objects.exists()
