"""The labelling API for annotators' tokens: next item, submit (and the next), skip, my labels.
A labeller's token works here (and still gets 403 on the owners' and editors' endpoints);
outsiders 404; blind like the screen; pairwise answers in the caller's left / right terms."""

from __future__ import annotations

import json

import pytest

from apps.labeling.claims import label_claim_next
from apps.labeling.models import HumanLabel, LabelSource
from apps.projects.services import token_create
from tests.labeling.helpers import label_one, make_session

pytestmark = pytest.mark.django_db


def _bearer(personas, who: str, project=None) -> dict:
    _, raw = token_create(user=getattr(personas, who), project=project or personas.project,
                          name="script")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _api(session, action: str, project: str = "acme") -> str:
    return f"/api/v1/projects/{project}/labelling/sessions/{session.pk}/{action}"


def _post(client, path: str, body: dict, auth: dict):
    return client.post(path, json.dumps(body), content_type="application/json", **auth)


@pytest.fixture
def session(personas):
    return make_session(personas.project, assignees=[personas.labeller, personas.editor],
                        items=3, overlap=2)


def test_a_labeller_token_labels_a_whole_session(personas, session, client):
    auth = _bearer(personas, "labeller")
    listed = client.get("/api/v1/projects/acme/labelling/sessions", **auth)
    assert listed.status_code == 200
    assert [(s["id"], s["items"], s["open"]) for s in listed.json()] == [(session.pk, 3, True)]
    first = client.get(_api(session, "next"), **auth).json()
    assert first["item"]["id"] == "i0" and first["item"]["responses"][0]["side"] == "response"
    assert [c["key"] for c in first["criteria"]] == ["correct", "safe"]
    assert first["criteria"][0]["levels"][1] == {"value": "2", "label": "Partly",
                                                 "anchor": "Partly right."}
    again = client.get(_api(session, "next"), **auth).json()
    assert again["assignment"] == first["assignment"]  # the same claim until it is answered
    answered = _post(client, _api(session, "submit"), {
        "assignment": first["assignment"], "values": {"correct": 3, "safe": "1"},
        "comment": "fine"}, auth)
    assert answered.status_code == 200
    body = answered.json()
    assert (body["outcome"], body["round"], body["values"]) == (
        "saved", 1, {"correct": "3", "safe": "1"})
    assert body["next"]["item"]["id"] == "i1" and body["next"]["progress"]["done"] == 1
    twice = _post(client, _api(session, "submit"), {
        "assignment": first["assignment"], "values": {"correct": 1, "safe": 0}}, auth).json()
    assert twice["outcome"] == "already_saved" and twice["values"]["correct"] == "3"
    label = HumanLabel.objects.get(criterion_key="correct", annotator="labeller")
    assert (label.value, label.comment, label.source) == ("3", "fine", LabelSource.API)

    skipped = _post(client, _api(session, "skip"), {
        "assignment": body["next"]["assignment"], "reason": "not my language"}, auth).json()
    assert skipped["skipped"] is True and skipped["next"]["item"]["id"] == "i2"
    _post(client, _api(session, "submit"), {"assignment": skipped["next"]["assignment"],
                                            "values": {"correct": 1, "safe": 0}}, auth)
    done = client.get(_api(session, "next"), **auth).json()
    assert done["assignment"] is None and "Nothing left" in done["message"]
    mine = client.get(_api(session, "mine"), **auth).json()
    assert [row["item"] for row in mine["labels"]] == ["i2", "i0"]
    assert mine["labels"][1] == {"item": "i0", "values": {"correct": "3", "safe": "1"},
                                 "comment": "fine",
                                 "submitted_at": mine["labels"][1]["submitted_at"]}


def test_the_api_is_blind_to_other_annotators_and_verdicts(personas, session, client):
    label_one(session, personas.editor, {"correct": 1, "safe": 0}, comment="EDITOR-SECRET")
    auth = _bearer(personas, "labeller")
    text = client.get(_api(session, "next"), **auth).content.decode()
    assert "EDITOR-SECRET" not in text and "editor" not in text
    mine = client.get(_api(session, "mine"), **auth).json()
    assert mine["labels"] == []


def test_bad_answers_are_refused_with_the_criterion_and_nothing_is_stored(personas, session,
                                                                          client):
    auth = _bearer(personas, "labeller")
    claim = client.get(_api(session, "next"), **auth).json()["assignment"]
    for values, field in (({"correct": 7, "safe": 1}, "correct"),
                          ({"correct": 2}, "safe"),
                          ({"correct": {"x": 1}, "safe": 1}, "correct"),
                          ({"correct": [2], "safe": 1}, "correct"),
                          ({"correct": "x" * 1_000_000, "safe": 1}, "correct"),
                          ({"correct": "\u0000", "safe": 1}, "correct"),
                          ({"correct": True, "safe": 1}, "correct"),
                          ({"correct": 2.5, "safe": 1}, "correct")):
        response = _post(client, _api(session, "submit"), {"assignment": claim,
                                                           "values": values}, auth)
        assert response.status_code == 422, values
        body = response.json()
        assert field in body["errors"] and len(response.content) < 2000
    for raw in (b'{"assignment": 1, "values": {"correct": NaN, "safe": 1}}',
                b'{"assignment": ' + b"9" * 5000 + b', "values": {}}',
                b"[" * 100_000, b'{"assignment": "x", "values": []}', b"", b"[]"):
        response = client.post(_api(session, "submit"), raw, content_type="application/json",
                               **auth)
        assert response.status_code in (400, 404, 422), (raw[:40], response.status_code)
    # A 10 MB body is over the request size limit: 400, as Django answers it, never a crash.
    from django.test import Client

    lenient = Client(raise_request_exception=False)
    huge = _post(lenient, _api(session, "submit"), {"assignment": claim, "values": {
        "correct": "x" * 10_000_000}}, auth)
    assert huge.status_code == 400
    assert not HumanLabel.objects.exists()
    stranger = _post(client, _api(session, "submit"), {"assignment": 10**9,
                                                       "values": {"correct": 1, "safe": 1}},
                     auth)
    assert stranger.status_code == 404
    no_reason = _post(client, _api(session, "skip"), {"assignment": claim, "reason": " "}, auth)
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["errors"]


def test_pairwise_answers_are_left_or_right_and_stored_in_item_terms(personas, client):
    session = make_session(personas.project, assignees=[personas.labeller], items=20,
                           pairwise=True)
    auth = _bearer(personas, "labeller")
    seen = {}
    for _ in range(20):
        given = client.get(_api(session, "next"), **auth).json()
        if given["assignment"] is None:
            break
        sides = [r["side"] for r in given["item"]["responses"]]
        assert sides == ["left", "right"]
        assert [lv["value"] for lv in given["criteria"][0]["levels"]] == ["left", "right",
                                                                          "tie"]
        letter = _post(client, _api(session, "submit"), {
            "assignment": given["assignment"], "values": {"overall": "A"}}, auth)
        assert letter.status_code == 422 and "left, right or tie" in letter.json()["detail"]
        left_text = given["item"]["responses"][0]["text"]
        _post(client, _api(session, "submit"), {"assignment": given["assignment"],
                                                "values": {"overall": "left"}}, auth)
        seen[given["item"]["id"]] = left_text
    for label in HumanLabel.objects.filter(session=session).select_related("item"):
        shown_left = label.item.response_a if label.shown_order == "AB" else label.item.response_b
        assert shown_left == seen[label.item.external_id]
        assert label.value == label.shown_order[0]  # "left" became that side's letter
    assert {label.shown_order for label in HumanLabel.objects.filter(session=session)} == {
        "AB", "BA"}


def test_who_may_use_the_labelling_api(personas, session, client):
    stranger_session = make_session(personas.project, assignees=[personas.editor],
                                    name="editor only", version=session.rubric_version,
                                    dataset=session.dataset)
    labeller = _bearer(personas, "labeller")
    assert client.get(_api(stranger_session, "next"), **labeller).status_code == 404
    owner = _bearer(personas, "owner")  # an owner who is not an annotator of the session
    assert client.get(_api(session, "next"), **owner).status_code == 403
    outsider = _bearer(personas, "outsider", project=personas.other_project)
    assert client.get(_api(session, "next"), **outsider).status_code == 404
    assert client.get(_api(session, "next", project="other"), **labeller).status_code == 404
    assert client.get(_api(session, "next")).status_code == 401
    assert client.post(_api(session, "next"), **labeller).status_code == 405
    missing = "/api/v1/projects/acme/labelling/sessions/999999/next"
    assert client.get(missing, **labeller).status_code == 404
    # A labeller's token still gets 403 on the owners' and editors' endpoints.
    assert client.get("/api/v1/projects/acme/rubrics", **labeller).status_code == 403
    assert client.get("/api/v1/projects/acme/datasets", **labeller).status_code == 403


def test_submitting_to_a_closed_session_says_so(personas, session, client):
    from apps.labeling.services import session_close

    auth = _bearer(personas, "labeller")
    claim = label_claim_next(session=session, user=personas.labeller)
    session_close(session=session)
    response = _post(client, _api(session, "submit"), {"assignment": claim.pk,
                                                       "values": {"correct": 1, "safe": 1}},
                     auth)
    assert response.status_code == 409 and "closed" in response.json()["detail"]
    given = client.get(_api(session, "next"), **auth).json()
    assert given["assignment"] is None and given["message"] == "This session is closed."
