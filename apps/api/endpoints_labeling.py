"""The labelling API: what an annotator does on the labelling screen, for scripts and other
front ends, with the annotator's own token (any member, a labeller too).

Same doors and services as the screen: the session loader (outsiders 404; a labeller who is not
assigned 404; an owner or editor who is not assigned 403), claims, submit-and-next in one
transaction, skip. Blind like the screen: an item comes with the rubric and the caller's own
answers only, never a verdict or another annotator's label. Pairwise items come in the
annotator's recorded order as `left` and `right`, and answers are `left`, `right` or `tie`
(mapped to the item's A / B by that order, so the people's position bias stays measurable).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import Http404
from ninja import Router, Schema, Status

from apps.api.auth import check_token_scope
from apps.labeling import present, services
from apps.labeling.claims import label_claim_next
from apps.labeling.models import Assignment, AssignmentStatus, LabelSource
from apps.labeling.selectors import (
    get_session_for_user,
    own_history,
    own_progress,
    session_criteria,
)
from apps.projects.access import Need, get_project_for_user

router = Router(tags=["labelling"])


class Error(Schema):
    detail: str


class Problems(Schema):
    detail: str
    errors: dict[str, list[str]]


class Level(Schema):
    value: str  # what to answer
    label: str
    anchor: str


class CriterionOut(Schema):
    key: str
    name: str
    description: str
    scale: str
    levels: list[Level]


class ResponseText(Schema):
    side: str  # "response", or "left" / "right" for pairwise
    text: str


class ItemOut(Schema):
    id: str
    prompt: str
    responses: list[ResponseText]
    reference: str


class Progress(Schema):
    done: int
    skipped: int


class NextOut(Schema):
    assignment: int | None
    expires_at: str | None
    item: ItemOut | None
    criteria: list[CriterionOut]
    progress: Progress
    message: str


class SessionOut(Schema):
    id: int
    name: str
    open: bool
    rubric: str
    version: int
    dataset: str
    kind: str
    items: int
    overlap: int
    progress: Progress


class SubmitIn(Schema):
    assignment: int
    values: dict[str, Any]
    comment: str = ""


class SubmitOut(Schema):
    outcome: str  # saved, already_saved, refused
    round: int
    values: dict[str, str]  # what is stored, in the caller's terms (left / right for pairwise)
    message: str
    next: NextOut


class SkipIn(Schema):
    assignment: int
    reason: str


class SkipOut(Schema):
    skipped: bool
    message: str
    next: NextOut


class MyLabel(Schema):
    item: str
    values: dict[str, str]
    comment: str
    submitted_at: str | None


class MyLabelsOut(Schema):
    labels: list[MyLabel]
    page: int
    has_next: bool


def _session(request, slug: str, session_id: int):
    check_token_scope(request, slug)
    session, _ = get_session_for_user(request.user, slug, session_id, need=Need.MEMBER,
                                      annotator=True)
    return session


def _criteria_out(criteria: list[dict]) -> list[dict]:
    return [{"key": view.key, "name": view.name, "description": view.description,
             "scale": c["scale"]["type"],
             "levels": [{"value": lv.value, "label": lv.label, "anchor": lv.anchor}
                        for lv in view.levels]}
            for c, view in zip(criteria, present.criteria_views(criteria), strict=True)]


def _next_out(session, assignment: Assignment | None, counts: dict, message: str = "") -> dict:
    criteria = session_criteria(session)
    item = None
    if assignment is not None:
        it = assignment.session_item.item
        if session.is_pairwise:
            order = assignment.shown_order or "AB"
            texts = {"A": it.response_a, "B": it.response_b}
            responses = [{"side": side, "text": texts[letter]}
                         for side, letter in zip(present.SIDES, order, strict=True)]
        else:
            responses = [{"side": "response", "text": it.response}]
        item = {"id": it.external_id, "prompt": it.prompt, "responses": responses,
                "reference": it.reference}
    if not message:
        message = ("" if assignment is not None else
                   "Nothing left for you in this session." if session.is_open else
                   "This session is closed.")
    return {"assignment": getattr(assignment, "pk", None),
            "expires_at": assignment.expires_at.isoformat() if assignment else None,
            "item": item, "criteria": _criteria_out(criteria), "progress": counts,
            "message": message}


def _pairwise_in_item_terms(session, values: dict) -> dict[str, list[str]]:
    """Pairwise answers must be in the caller's terms (left / right / tie): an "A" or "B" would
    skip the order mapping and hide the caller's position bias."""
    errors = {}
    for c in session_criteria(session):
        raw = values.get(c["key"])
        if (c["scale"]["type"] == "pairwise" and isinstance(raw, str)
                and raw.strip().upper() in ("A", "B")):
            errors[c["key"]] = [f"{c.get('name') or c['key']}: answer left, right or tie (the "
                                "sides as the item was given to you)."]
    return errors


@router.get("projects/{slug}/labelling/sessions", response={200: list[SessionOut], 404: Error},
            summary="The labelling sessions I am assigned to")
def my_sessions(request, slug: str):
    check_token_scope(request, slug)
    access = get_project_for_user(request.user, slug, need=Need.MEMBER)
    from apps.labeling.models import LabelingSession, SessionAssignee

    mine = {a.session_id: a for a in SessionAssignee.objects.filter(
        user=request.user, session__project=access.project)}
    sessions = (LabelingSession.objects.filter(pk__in=list(mine))
                .select_related("rubric_version__rubric", "dataset"))
    return [{"id": s.pk, "name": s.name, "open": s.is_open,
             "rubric": s.rubric_version.rubric.slug, "version": s.rubric_version.number,
             "dataset": s.dataset.name, "kind": s.dataset.kind, "items": s.item_count,
             "overlap": s.overlap,
             "progress": {"done": mine[s.pk].done_count, "skipped": mine[s.pk].skipped_count}}
            for s in sessions]


@router.get("projects/{slug}/labelling/sessions/{session_id}/next",
            response={200: NextOut, 403: Error, 404: Error},
            summary="My current item, or the next one (claimed for me)")
def next_item(request, slug: str, session_id: int):
    """The item stays mine until `expires_at`; after that it may go to someone else. No item
    (`assignment` null) when nothing is left for me or the session is closed."""
    session = _session(request, slug, session_id)
    claim = label_claim_next(session=session, user=request.user)
    return _next_out(session, claim, own_progress(session, request.user))


@router.post("projects/{slug}/labelling/sessions/{session_id}/submit",
             response={200: SubmitOut, 403: Error, 404: Error, 409: Error, 422: Problems},
             summary="Submit my answers for an item and get the next one")
def submit(request, slug: str, session_id: int, payload: SubmitIn):
    """All criteria at once, by key. Submitting the same assignment twice answers
    `already_saved` with what is stored. An item I labelled before (another session) is stored
    as my next round."""
    session = _session(request, slug, session_id)
    wrong = _pairwise_in_item_terms(session, payload.values)
    if wrong:
        return Status(422, Problems(detail="; ".join(m for v in wrong.values() for m in v),
                                    errors=wrong))
    if len(payload.comment) > 5000:
        return Status(422, Problems(detail="comment: at most 5,000 characters",
                                    errors={"comment": ["at most 5,000 characters"]}))
    try:
        result, following, counts = services.label_submit_and_next(
            session=session, user=request.user, assignment_id=payload.assignment,
            values=payload.values, comment=payload.comment, sides=True,
            source=LabelSource.API)
    except Assignment.DoesNotExist:
        raise Http404("No such assignment of yours in this session") from None
    except services.SessionClosed as exc:
        return Status(409, Error(detail=" ".join(exc.messages)))
    except ValidationError as exc:
        errors = exc.message_dict
        return Status(422, Problems(detail="; ".join(m for v in errors.values() for m in v),
                                    errors=errors))
    criteria = session_criteria(session)
    return {"outcome": result.outcome, "round": result.round,
            "values": present.to_screen_terms(criteria, result.values,
                                              result.assignment.shown_order),
            "message": result.message, "next": _next_out(session, following, counts)}


@router.post("projects/{slug}/labelling/sessions/{session_id}/skip",
             response={200: SkipOut, 403: Error, 404: Error, 422: Problems},
             summary="Give an item back to the pool, with a reason")
def skip(request, slug: str, session_id: int, payload: SkipIn):
    session = _session(request, slug, session_id)
    try:
        skipped = services.label_skip(session=session, user=request.user,
                                      assignment_id=payload.assignment,
                                      reason=payload.reason[:300])
    except Assignment.DoesNotExist:
        raise Http404("No such assignment of yours in this session") from None
    except ValidationError as exc:
        return Status(422, Problems(detail=" ".join(exc.messages), errors=exc.message_dict))
    following = label_claim_next(session=session, user=request.user)
    message = ("Skipped; the item went back to the pool." if skipped
               else "This item was no longer yours to skip.")
    return {"skipped": skipped, "message": message,
            "next": _next_out(session, following, own_progress(session, request.user))}


@router.get("projects/{slug}/labelling/sessions/{session_id}/mine",
            response={200: MyLabelsOut, 403: Error, 404: Error},
            summary="My submitted labels in this session, newest first")
def my_labels(request, slug: str, session_id: int, page: int = 1):
    session = _session(request, slug, session_id)
    page = min(max(page, 1), 10**6)
    criteria = session_criteria(session)
    history = own_history(session, request.user, page=page)
    labels = [{"item": a.session_item.item.external_id,
               "values": present.to_screen_terms(criteria, values, a.shown_order),
               "comment": a.comment,
               "submitted_at": a.submitted_at.isoformat() if a.submitted_at else None}
              for a, values in history["rows"]
              if a.status == AssignmentStatus.DONE]
    return {"labels": labels, "page": page, "has_next": history["has_next"]}

