"""The labelling pages, each with the STYLE.md 9 block: works, member works, labeller 403 where
not allowed, bad id 404, wrong method 405 (outsiders are swept in tests/test_url_sweep.py).

Sessions are visible to owners, editors and their assignees; to any other member they do not
exist (404). The annotator's pages need the user to be assigned (an owner who is not: 403).
"""

from __future__ import annotations

import pytest

from apps.labeling.claims import label_claim_next
from apps.labeling.models import (
    Assignment,
    AssignmentStatus,
    GoldLabel,
    HumanLabel,
    LabelingSession,
    SessionStatus,
)
from tests.factories import MembershipFactory, UserFactory
from tests.labeling.helpers import HTMX, label_one, make_session, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(personas):
    return make_session(personas.project, assignees=[personas.labeller, personas.editor],
                        items=4, overlap=2)


@pytest.fixture
def stranger(personas):
    """A labeller of the project who is not assigned to the session."""
    user = UserFactory(username="stranger")
    MembershipFactory(project=personas.project, user=user, role="labeller")
    return user


def _client(personas, user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


# -- session list and create -----------------------------------------------------------------

def test_session_list_shows_every_session_with_progress_to_owners_and_editors(personas,
                                                                              session):
    label_one(session, personas.labeller)
    for who in ("owner", "editor"):
        page = personas.client(who).get(url("session_list"))
        assert page.status_code == 200
        body = page.content.decode()
        assert "pass one" in body and "labeller" in body and "editor" in body
        assert "1 of 8 labels" in body


def test_a_labeller_sees_only_sessions_assigned_to_them(personas, session, stranger):
    make_session(personas.project, assignees=[personas.editor], name="not for you",
                 version=session.rubric_version, dataset=session.dataset)
    page = personas.client("labeller").get(url("session_list")).content.decode()
    assert "pass one" in page and "not for you" not in page
    assert url("label_screen", session) in page
    assert "editor" not in page.split("<main")[1]  # not the other annotators' progress
    empty = _client(personas, stranger).get(url("session_list")).content.decode()
    assert "No session is assigned to you yet" in empty


def test_the_project_home_lists_a_labellers_open_sessions(personas, session):
    home = personas.client("labeller").get(url("project_home")).content.decode()
    assert "Your labelling work" in home and url("label_screen", session) in home
    editor_home = personas.client("editor").get(url("project_home")).content.decode()
    assert url("session_list") in editor_home


def test_session_list_takes_get_only_and_its_query_count_is_flat(personas, session,
                                                                 django_assert_max_num_queries):
    assert personas.client("owner").post(url("session_list")).status_code == 405
    for n in range(5):
        make_session(personas.project, assignees=[personas.labeller], name=f"s{n}",
                     version=session.rubric_version, dataset=session.dataset)
    client = personas.client("owner")
    with django_assert_max_num_queries(8):
        assert client.get(url("session_list")).status_code == 200


def _create_data(version, dataset, users, **extra):
    return {"name": "second pass", "version": str(version.pk), "dataset": str(dataset.pk),
            "mode": "all", "overlap": "2", "claim_ttl_s": "600", "seed": "0",
            "assignees": [str(u.pk) for u in users], **extra}


def test_an_editor_creates_a_session_of_a_random_sample(personas, session):
    data = _create_data(session.rubric_version, session.dataset,
                        [personas.labeller, personas.editor], mode="sample", sample_size="2",
                        seed="3")
    response = personas.client("editor").post(url("session_create"), data)
    assert response.status_code == 302
    created = LabelingSession.objects.get(name="second pass")
    assert created.item_count == 2 and created.overlap == 2 and created.claim_ttl_s == 600
    assert created.selection == {"mode": "sample", "size": 2, "seed": 3}
    assert response["Location"] == url("session_detail", created)


def test_an_editor_creates_a_session_of_listed_items_and_a_typo_is_named(personas, session):
    users = [personas.labeller, personas.editor]
    data = _create_data(session.rubric_version, session.dataset, users, mode="items",
                        items="i3\nno-such-item\n")
    response = personas.client("editor").post(url("session_create"), data)
    assert response.status_code == 422
    assert "1 id(s) not in" in response.content.decode() and "no-such-item" in (
        response.content.decode())
    data["items"] = ""
    response = personas.client("editor").post(url("session_create"), data)
    assert response.status_code == 422 and "one per line" in response.content.decode()
    data["items"] = "i3\r\ni1"
    response = personas.client("editor").post(url("session_create"), data)
    assert response.status_code == 302
    created = LabelingSession.objects.get(name="second pass")
    assert created.selection == {"mode": "items", "ids": ["i3", "i1"]}
    assert list(created.pool.order_by("position").values_list("item__external_id", flat=True)
                ) == ["i1", "i3"]
    detail = personas.client("editor").get(url("session_detail", created)).content.decode()
    assert "Item choice: items, 2 listed items." in detail


def test_session_create_shows_its_errors_with_422(personas, session):
    data = _create_data(session.rubric_version, session.dataset, [personas.labeller],
                        overlap="3", mode="filter", filter="nothing here")
    response = personas.client("owner").post(url("session_create"), data)
    assert response.status_code == 422
    assert "key=value" in response.content.decode()
    data["mode"], data["filter"] = "filter", "split=none"
    response = personas.client("owner").post(url("session_create"), data)
    assert response.status_code == 422
    body = response.content.decode()
    assert "3 distinct annotators" in body or "only 1" in body


def test_a_session_over_a_ratings_only_dataset_is_refused_and_nothing_is_made(personas,
                                                                               session):
    dataset = session.dataset
    dataset.texts_available = False
    dataset.save(update_fields=["texts_available"])
    before = LabelingSession.objects.count()
    data = _create_data(session.rubric_version, dataset, [personas.labeller])
    response = personas.client("owner").post(url("session_create"), data)
    assert response.status_code == 422
    assert "not distributed" in response.content.decode()
    assert LabelingSession.objects.count() == before


def test_pages_of_an_older_session_over_a_ratings_only_dataset_say_so(personas, session):
    dataset = session.dataset
    dataset.texts_available = False
    dataset.save(update_fields=["texts_available"])
    owner = personas.client("owner")
    for name in ("session_detail", "adjudicate"):
        body = owner.get(url(name, session)).content.decode()
        assert "are not distributed with it" in body, name
    screen = personas.client("labeller").get(url("label_screen", session)).content.decode()
    assert "are not distributed with it" in screen


def test_a_labeller_cannot_create_sessions(personas, session):
    client = personas.client("labeller")
    assert client.get(url("session_create")).status_code == 403
    data = _create_data(session.rubric_version, session.dataset, [personas.labeller])
    assert client.post(url("session_create"), data).status_code == 403


# -- session detail, close -------------------------------------------------------------------

def test_session_detail_shows_progress_agreement_and_exports(personas, session):
    label_one(session, personas.labeller, {"correct": 3, "safe": 1})
    label_one(session, personas.editor, {"correct": 3, "safe": 0})
    page = personas.client("owner").get(url("session_detail", session))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Human agreement" in body and "Krippendorff" in body
    assert url("session_export", session) in body and "Adjudicate" in body
    editor = personas.client("editor").get(url("session_detail", session)).content.decode()
    assert "Adjudicate" not in editor and "Close session" in editor


def test_session_pages_refuse_labellers_and_unknown_ids(personas, session):
    client = personas.client("labeller")
    assert client.get(url("session_detail", session)).status_code == 403
    assert client.post(url("session_close", session)).status_code == 403
    owner = personas.client("owner")
    assert owner.get(url("session_detail", session_id=999999)).status_code == 404
    assert owner.post(url("session_detail", session)).status_code == 405
    assert owner.get(url("session_close", session)).status_code == 405


def test_an_editor_closes_a_session(personas, session):
    response = personas.client("editor").post(url("session_close", session))
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.status == SessionStatus.CLOSED and session.closed_at is not None
    screen = personas.client("labeller").get(url("label_screen", session)).content.decode()
    assert "This session is closed" in screen


# -- the labelling screen --------------------------------------------------------------------

def test_the_screen_shows_one_item_with_every_anchor(personas, session):
    page = personas.client("labeller").get(url("label_screen", session))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Question 0?" in body and "Answer 0." in body
    for anchor in ("Mostly wrong.", "Partly right.", "Fully right.", "Gives unsafe advice.",
                   "Nothing unsafe."):
        assert anchor in body
    assert 'src="/static/js/labeling.js"' in body and "<script>" not in body
    claim = Assignment.objects.get(user=personas.labeller)
    assert f'name="assignment" value="{claim.pk}"' in body


def test_submit_by_htmx_brings_the_next_item_in_the_panel(personas, session):
    client = personas.client("labeller")
    claim = label_claim_next(session=session, user=personas.labeller)
    response = client.post(url("label_screen", session), {
        "assignment": claim.pk, "c_correct": "2", "c_safe": "1", "comment": "ok"}, **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="panel"') and "<html" not in body
    assert "Question 1?" in body and "Saved: Correct = 2 (Partly), Safe = 1 (Yes)" in body
    assert HumanLabel.objects.filter(session=session, user=personas.labeller).count() == 2


def test_submit_without_javascript_redirects_to_the_screen(personas, session):
    client = personas.client("labeller")
    claim = label_claim_next(session=session, user=personas.labeller)
    response = client.post(url("label_screen", session),
                           {"assignment": claim.pk, "c_correct": "3", "c_safe": "0"})
    assert response.status_code == 302 and response["Location"] == url("label_screen", session)
    follow = client.get(response["Location"]).content.decode()
    assert "Saved: Correct = 3" in follow and "Question 1?" in follow


def test_a_missing_criterion_is_named_and_the_answers_are_kept(personas, session):
    client = personas.client("labeller")
    claim = label_claim_next(session=session, user=personas.labeller)
    response = client.post(url("label_screen", session),
                           {"assignment": claim.pk, "c_correct": "2", "comment": "hmm"}, **HTMX)
    assert response.status_code == 422
    body = response.content.decode()
    assert "Safe: choose a level" in body and "Question 0?" in body
    assert 'value="2" data-digit="2" checked' in body and ">hmm</textarea>" in body


def test_a_double_submit_answers_already_saved_not_an_error(personas, session):
    client = personas.client("labeller")
    claim = label_claim_next(session=session, user=personas.labeller)
    data = {"assignment": claim.pk, "c_correct": "1", "c_safe": "1"}
    client.post(url("label_screen", session), data, **HTMX)
    again = client.post(url("label_screen", session), {**data, "c_correct": "3"}, **HTMX)
    assert again.status_code == 200
    body = again.content.decode()
    assert "Already saved" in body and "Correct = 1 (Wrong)" in body
    assert HumanLabel.objects.filter(session=session, user=personas.labeller).count() == 2


def test_skip_asks_for_a_reason_then_brings_the_next_item(personas, session):
    client = personas.client("labeller")
    claim = label_claim_next(session=session, user=personas.labeller)
    refused = client.post(url("label_skip", session), {"assignment": claim.pk, "reason": ""},
                          **HTMX)
    assert refused.status_code == 422 and "This field is required" in refused.content.decode()
    done = client.post(url("label_skip", session),
                       {"assignment": claim.pk, "reason": "cannot judge"}, **HTMX)
    assert done.status_code == 200 and "Question 1?" in done.content.decode()
    claim.refresh_from_db()
    assert claim.status == AssignmentStatus.SKIPPED
    assert client.get(url("label_skip", session)).status_code == 405


def test_undo_shows_the_last_item_again(personas, session):
    client = personas.client("labeller")
    label_one(session, personas.labeller)
    response = client.post(url("label_undo", session), **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Question 0?" in body and "Undone" in body
    assert not HumanLabel.objects.filter(session=session).exists()
    assert client.post(url("label_undo", session)).status_code == 302
    assert client.get(url("label_undo", session)).status_code == 405


def test_the_annotator_pages_need_an_assignment(personas, session, stranger):
    item_id = session.pool.first().item_id
    for name, kwargs in (("label_screen", {}), ("label_history", {}),
                         ("label_edit", {"item_id": item_id})):
        assert _client(personas, stranger).get(url(name, session, **kwargs)).status_code == 404
        assert personas.client("owner").get(url(name, session, **kwargs)).status_code == 403
    assert _client(personas, stranger).post(url("label_skip", session)).status_code == 404
    assert personas.client("owner").post(url("label_undo", session)).status_code == 403
    assert _client(personas, stranger).get(url("session_export", session)).status_code == 404
    client = personas.client("labeller")
    assert client.get(url("label_screen", session_id=999999)).status_code == 404
    assert client.put(url("label_screen", session)).status_code == 405


def test_history_lists_ones_own_labels_and_edit_changes_them(personas, session):
    claim, _ = label_one(session, personas.labeller, {"correct": 1, "safe": 0}, comment="meh")
    client = personas.client("labeller")
    history = client.get(url("label_history", session)).content.decode()
    assert "Correct = 1 (Wrong), Safe = 0 (No)" in history and "meh" in history
    item_id = claim.session_item.item_id
    edit_url = url("label_edit", session, item_id=item_id)
    form = client.get(edit_url).content.decode()
    assert 'value="1" data-digit="1" checked' in form
    response = client.post(edit_url, {"c_correct": "3", "c_safe": "1", "comment": "better"})
    assert response.status_code == 302 and response["Location"] == url("label_history", session)
    assert dict(HumanLabel.objects.filter(session=session, user=personas.labeller)
                .values_list("criterion_key", "value")) == {"correct": "3", "safe": "1"}
    assert client.post(edit_url, {"c_correct": "9", "c_safe": "1"}).status_code == 422
    other = session.pool.exclude(item_id=item_id).first().item_id
    assert client.get(url("label_edit", session, item_id=other)).status_code == 404
    assert client.delete(edit_url).status_code == 405


def test_submit_and_next_has_a_pinned_query_count(personas, session,
                                                  django_assert_max_num_queries):
    client = personas.client("labeller")
    claim = label_claim_next(session=session, user=personas.labeller)
    # 21 = sign-in 2, loader 2, the rubric's criteria 1 (once per process for a published
    # version), then one transaction: annotator lock 1, claim 1, the annotator's last round of
    # the item 1, labels 3 (insert in a savepoint), claim done 1, own count 1, next claim 5
    # (live claim, expiry sweep, pick, count, insert); the session's progress bar 1. Inside the
    # test's transaction the outer block adds SAVEPOINT/RELEASE (2); in production that is
    # BEGIN/COMMIT, which Django does not count.
    with django_assert_max_num_queries(21):
        response = client.post(url("label_screen", session), {
            "assignment": claim.pk, "c_correct": "2", "c_safe": "1"}, **HTMX)
    assert response.status_code == 200 and "Question 1?" in response.content.decode()


# -- adjudication and exports ----------------------------------------------------------------

def test_the_owner_adjudicates_a_disagreement_with_a_gold_label(personas, session):
    label_one(session, personas.labeller, {"correct": 1, "safe": 1}, comment="wrong answer")
    label_one(session, personas.editor, {"correct": 3, "safe": 1})
    page = personas.client("owner").get(url("adjudicate", session))
    assert page.status_code == 200
    body = page.content.decode()
    assert "wrong answer" in body and "1 item–criterion pair" in body  # safe agrees
    item_id = session.pool.get(position=0).item_id
    response = personas.client("owner").post(url("adjudicate", session), {
        "item": item_id, "criterion": "correct", "value": "2", "note": "partly right"})
    assert response.status_code == 302
    gold = GoldLabel.objects.get(item_id=item_id, criterion_key="correct")
    assert gold.value == "2" and gold.note == "partly right" and gold.user == personas.owner
    bad = personas.client("owner").post(url("adjudicate", session), {
        "item": item_id, "criterion": "correct", "value": "7"})
    assert bad.status_code == 422
    for who in ("editor", "labeller"):
        assert personas.client(who).get(url("adjudicate", session)).status_code == 403


def test_exports_give_labellers_their_own_labels_and_owners_all(personas, session):
    label_one(session, personas.labeller, {"correct": 1, "safe": 1})
    label_one(session, personas.editor, {"correct": 3, "safe": 1})
    import json

    def annotators(response):
        rows = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
        return {label["annotator"] for row in rows for label in row["labels"]}

    assert annotators(personas.client("labeller").get(url("session_export", session))) == {
        "labeller"}
    assert annotators(personas.client("owner").get(url("session_export", session))) == {
        "labeller", "editor"}
    csv = personas.client("owner").get(url("session_export", session) + "?format=csv")
    assert csv["Content-Type"].startswith("text/csv")
    dataset_url = url("dataset_labels_export", dataset_id=session.dataset_id)
    assert personas.client("editor").get(dataset_url).status_code == 200
    assert personas.client("labeller").get(dataset_url).status_code == 403
    assert personas.client("owner").get(url("dataset_labels_export",
                                            dataset_id=999999)).status_code == 404
    assert personas.client("owner").post(dataset_url).status_code == 405


def test_an_unknown_export_format_is_refused_with_its_reason(personas, session):
    label_one(session, personas.labeller, {"correct": 1, "safe": 1})
    for page in (url("session_export", session),
                 url("dataset_labels_export", dataset_id=session.dataset_id)):
        response = personas.client("owner").get(page + "?format=xml")
        assert response.status_code == 400
        assert "format=jsonl or format=csv" in response.content.decode()
    jsonl = personas.client("owner").get(url("session_export", session) + "?format=jsonl")
    assert jsonl.status_code == 200
    assert jsonl["Content-Disposition"].endswith('.jsonl"')


def test_texts_are_escaped_with_whitespace_kept_and_code_in_a_code_box(personas):
    from apps.datasets.models import Item

    session = make_session(personas.project, assignees=[personas.labeller], items=1)
    Item.objects.filter(dataset=session.dataset).update(
        prompt="Line one\n  indented <b>bold?</b>",
        response='Try:\n```python\nprint("<script>alert(1)</script>")\n```\nDone.',
        reference="<img src=x onerror=alert(2)>")
    body = personas.client("labeller").get(url("label_screen", session)).content.decode()
    assert '<div class="plain">Line one\n  indented &lt;b&gt;bold?&lt;/b&gt;</div>' in body
    assert ('<pre class="code"><code>print(&quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;)\n'
            "</code></pre>") in body
    assert "&lt;img src=x onerror=alert(2)&gt;" in body and "<img" not in body
    assert '<div class="label-item" hx-disable>' in body
