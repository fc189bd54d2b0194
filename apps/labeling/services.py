"""Writes for labelling sessions (STYLE.md 3): create, submit, skip, undo, edit, close, gold.

Claims are made in apps/labeling/claims.py; every write here that touches a claim follows its
lock order (annotator, then assignment, then pool item) and keeps active_count exact in the
same transaction (docs/decisions/0004-labelling-claims.md).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from apps.datasets.models import Dataset
from apps.labeling.claims import (
    BUSY,
    AnnotatorLock,
    claim_locked,
    free_slots,
    live_claim,
    lock_annotator,
    retry_claim,
)
from apps.labeling.models import (
    Assignment,
    AssignmentStatus,
    GoldLabel,
    HumanLabel,
    LabelingSession,
    LabelSource,
    SessionAssignee,
    SessionItem,
    SessionStatus,
)
from apps.labeling.present import to_item_terms
from apps.labeling.selection import select_item_ids
from apps.labeling.selectors import same_scale, session_criteria
from apps.projects.models import Membership, Project
from apps.rubrics import scales
from apps.rubrics.models import RubricVersion

MAX_OVERLAP = 50
MIN_CLAIM_TTL_S = 30


class SessionClosed(ValidationError):
    pass


# -- values ---------------------------------------------------------------------------------

def clean_values(criteria: list[dict], values: dict) -> dict[str, str]:
    """Read one answer per criterion with scales.coerce_value; all criteria are required.

    Returns {key: value text}; raises ValidationError({key: message}) naming each criterion
    that is missing or off its scale.
    """
    errors: dict[str, str] = {}
    cleaned: dict[str, str] = {}
    for criterion in criteria:
        key, name = criterion["key"], criterion.get("name") or criterion["key"]
        raw = values.get(key)
        allowed = ", ".join(str(v) for v in scales.allowed_values(criterion["scale"]))
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            errors[key] = f"{name}: choose a level ({allowed})."
            continue
        try:
            cleaned[key] = scales.value_to_text(scales.coerce_value(criterion["scale"], raw))
        except ValueError:
            shown = repr(raw) if len(repr(raw)) <= 60 else repr(raw)[:57] + "..."
            errors[key] = f"{name}: {shown} is not a level of this scale ({allowed})."
    if errors:
        raise ValidationError(errors)
    return cleaned


# -- submit ---------------------------------------------------------------------------------

SAVED = "saved"
ALREADY_SAVED = "already_saved"
REFUSED = "refused"


@dataclass
class SubmitResult:
    outcome: str  # SAVED, ALREADY_SAVED or REFUSED
    assignment: Assignment
    values: dict[str, str] = field(default_factory=dict)  # what is stored now, item terms
    message: str = ""
    round: int = 0  # the round the labels were stored as (SAVED), 0 otherwise


def _saved_values(assignment: Assignment, user, criteria: list[dict]) -> dict[str, str]:
    """What this annotator stored for the claim's item in the claim's session."""
    rows = HumanLabel.objects.filter(
        session_id=assignment.session_id, user=user, item_id=assignment.session_item.item_id,
        criterion_key__in=[c["key"] for c in criteria],
    ).values_list("criterion_key", "scale_signature", "value")
    signatures = {c["key"]: c["signature"] for c in criteria}
    return {key: value for key, signature, value in rows if signatures[key] == signature}


def next_round(*, item_id: int, annotator: str, criteria: list[dict]) -> int:
    """The round a new answer of this annotator on this item gets: one after their last."""
    top = (HumanLabel.objects.filter(item_id=item_id, annotator=annotator)
           .filter(same_scale(criteria)).aggregate(top=Max("round"))["top"])
    return (top or 0) + 1


ROUND_RETRIES = 5


def store_round(labels: list[HumanLabel], *, criteria: list[dict]) -> int:
    """Insert one answer's labels (one item, one annotator) as that annotator's next round;
    returns the round: 1 the first time, one more than their last round when they labelled the
    item before (imported, or in an earlier session). Earlier rounds are never overwritten and
    gaps are never refilled, so the highest round is always the newest answer
    (docs/decisions/0009-label-rounds.md).

    Race: the same person submitting the same item in two sessions at the same instant holds
    two different annotator locks; the second insert then meets the first's round and takes
    the one after it (a bounded retry, never a loop)."""
    first = labels[0]
    for _ in range(ROUND_RETRIES):
        number = next_round(item_id=first.item_id, annotator=first.annotator, criteria=criteria)
        for label in labels:
            label.round = number
        try:
            with transaction.atomic():
                HumanLabel.objects.bulk_create(labels)
        except IntegrityError:
            continue
        return number
    raise IntegrityError("could not store the labels as a new round; try again")


def _locked_assignment(session, user, assignment_id: int) -> Assignment:
    return (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("session_item")
        .get(pk=assignment_id, session=session, user=user)
    )


def _lock(session: LabelingSession, user) -> AnnotatorLock:
    lock = lock_annotator(session, user)
    if lock is None:
        raise Assignment.DoesNotExist("Not an annotator of this session.")
    return lock


def _submit_locked(session: LabelingSession, user, lock: AnnotatorLock, *, assignment_id: int,
                   values: dict, comment: str, sides: bool, now: datetime,
                   source: str = LabelSource.SCREEN) -> SubmitResult:
    """label_submit's work, inside the caller's transaction and under the annotator's lock."""
    criteria = session_criteria(session)
    assignment = _locked_assignment(session, user, assignment_id)
    if assignment.status == AssignmentStatus.DONE:
        return SubmitResult(ALREADY_SAVED, assignment,
                            _saved_values(assignment, user, criteria),
                            "Already saved: this item was submitted before.")
    if not lock.session_open:
        raise SessionClosed("This session is closed; labels can no longer be saved.")
    if sides:
        values = to_item_terms(criteria, values, assignment.shown_order)
    cleaned = clean_values(criteria, values)
    was = assignment.status
    if was != AssignmentStatus.CLAIMED:
        # The claim ended (expired or skipped) and gave its place back: take one again if the
        # item still has room.
        taken = SessionItem.objects.filter(
            pk=assignment.session_item_id, active_count__lt=session.overlap,
        ).update(active_count=F("active_count") + 1)
        if not taken:
            return SubmitResult(
                REFUSED, assignment, {},
                "Your claim on this item had expired and other annotators have labelled it "
                "since; your answer was not saved. Here is the next item.")
    labels = [
        HumanLabel(
            item_id=assignment.session_item.item_id, criterion_key=c["key"],
            scale_signature=c["signature"], annotator=user.get_username(), user=user,
            value=cleaned[c["key"]], comment=comment, source=source,
            session=session, shown_order=assignment.shown_order,
        )
        for c in criteria
    ]
    stored_round = store_round(labels, criteria=criteria)
    message = "Saved." if stored_round == 1 else (
        f"Round {stored_round}: you had labelled this item before; every round is kept "
        "(test-retest) and calibration uses your latest.")
    assignment.status = AssignmentStatus.DONE
    assignment.submitted_at = now
    assignment.comment = comment
    assignment.save(update_fields=["status", "submitted_at", "comment"])
    lock.add(done=1, skipped=-1 if was == AssignmentStatus.SKIPPED else 0)
    return SubmitResult(SAVED, assignment, cleaned, message, stored_round)


def label_submit(*, session: LabelingSession, user, assignment_id: int, values: dict,
                 comment: str = "", sides: bool = False,
                 now: datetime | None = None) -> SubmitResult:
    """Store one annotator's labels for the item of one claim, all criteria at once.

    A second submit of the same claim (double click, a retried request) answers ALREADY_SAVED
    with the stored values and changes nothing. An item the annotator labelled before
    (imported, another session) is stored as their next round (store_round). A claim that
    expired (or was skipped) is accepted late only while the item still has room; otherwise
    REFUSED, nothing stored.
    With `sides`, preference answers are in screen terms ("left" / "right") and are mapped
    to the item's A / B through the order this annotator was shown (present.to_item_terms).
    Raises Assignment.DoesNotExist for a claim that is not this user's, ValidationError for
    bad values, SessionClosed when the session is closed.
    """
    with transaction.atomic():
        lock = _lock(session, user)
        return _submit_locked(session, user, lock, assignment_id=assignment_id, values=values,
                              comment=comment, sides=sides, now=now or timezone.now())


def label_submit_and_next(*, session: LabelingSession, user, assignment_id: int,
                          values: dict, comment: str = "", sides: bool = False,
                          source: str = LabelSource.SCREEN,
                          ) -> tuple[SubmitResult, Assignment | None, dict]:
    """label_submit, then the annotator's next claim, in one transaction (one commit, one
    lock): what the labelling screen does on Enter (and the labelling API's submit, with
    source API). Returns (result, next claim or None, the annotator's own counts)."""
    now = timezone.now()
    with transaction.atomic():
        lock = _lock(session, user)
        result = _submit_locked(session, user, lock, assignment_id=assignment_id,
                                values=values, comment=comment, sides=sides, now=now,
                                source=source)
        following = live_claim(session, user)  # an undone item comes back first
        if following is None:
            following = claim_locked(session, user, now=now)
        counts = lock.counts()
    if following is BUSY:
        following = retry_claim(session, user)
    return result, following, counts


# -- skip, undo, edit -------------------------------------------------------------------------

def label_skip(*, session: LabelingSession, user, assignment_id: int, reason: str) -> bool:
    """Give up a claim with a reason; its place returns to the pool. False if it was not a
    live claim any more (submitted, expired, skipped before)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why you skip this item."})
    with transaction.atomic():
        lock = _lock(session, user)
        assignment = _locked_assignment(session, user, assignment_id)
        if assignment.status != AssignmentStatus.CLAIMED:
            return False
        assignment.status = AssignmentStatus.SKIPPED
        assignment.skip_reason = reason[:300]
        assignment.save(update_fields=["status", "skip_reason"])
        free_slots(Counter({assignment.session_item_id: 1}))
        lock.add(skipped=1)
    return True


def label_undo(*, session: LabelingSession, user,
               now: datetime | None = None) -> Assignment | None:
    """Take back the annotator's last submission in this session: its labels are deleted and
    the item is theirs again (claimed, fresh expiry), shown next. None if nothing to undo.

    The item's place stays taken throughout (done and claimed both count), so undo never
    lets another annotator in."""
    if not session.is_open:
        raise SessionClosed("This session is closed.")
    now = now or timezone.now()
    with transaction.atomic():
        lock = _lock(session, user)
        if not lock.session_open:
            raise SessionClosed("This session is closed.")
        last = (
            Assignment.objects.select_for_update(of=("self",)).select_related("session_item")
            .filter(session=session, user=user, status=AssignmentStatus.DONE)
            .order_by("-submitted_at", "-id").first()
        )
        if last is None:
            return None
        HumanLabel.objects.filter(session=session, user=user,
                                  item_id=last.session_item.item_id).delete()
        last.status = AssignmentStatus.CLAIMED
        last.claimed_at = now
        last.expires_at = now + timedelta(seconds=session.claim_ttl_s)
        last.submitted_at = None
        last.save(update_fields=["status", "claimed_at", "expires_at", "submitted_at"])
        lock.add(done=-1)
    return last


def label_edit(*, session: LabelingSession, user, item_id: int, values: dict,
               comment: str = "", sides: bool = False) -> dict[str, str]:
    """Change one's own labels of one item while the session is open. Raises
    Assignment.DoesNotExist if the user submitted no labels for the item in this session."""
    if not session.is_open:
        raise SessionClosed("This session is closed; its labels can no longer be changed.")
    criteria = session_criteria(session)
    with transaction.atomic():
        if not _lock(session, user).session_open:
            raise SessionClosed("This session is closed; its labels can no longer be changed.")
        assignment = (
            Assignment.objects.select_for_update(of=("self",)).select_related("session_item")
            .get(session=session, user=user, session_item__item_id=item_id,
                 status=AssignmentStatus.DONE)
        )
        if sides:
            values = to_item_terms(criteria, values, assignment.shown_order)
        cleaned = clean_values(criteria, values)
        for c in criteria:
            changed = HumanLabel.objects.filter(
                session=session, user=user, item_id=item_id, criterion_key=c["key"],
                scale_signature=c["signature"],
            ).update(value=cleaned[c["key"]], comment=comment, updated_at=timezone.now())
            if not changed:
                # A criterion without a label of this session (it cannot happen through the
                # screen, which stores every criterion): stored as the annotator's next round.
                store_round([HumanLabel(
                    item_id=item_id, criterion_key=c["key"], scale_signature=c["signature"],
                    annotator=user.get_username(), user=user, value=cleaned[c["key"]],
                    comment=comment, source=LabelSource.SCREEN, session=session,
                    shown_order=assignment.shown_order)], criteria=[c])
        assignment.comment = comment
        assignment.save(update_fields=["comment"])
    return cleaned


# -- sessions ---------------------------------------------------------------------------------

def session_create(*, project: Project, version: RubricVersion, dataset: Dataset, name: str,
                   overlap: int, assignees: list, selection: dict, claim_ttl_s: int = 900,
                   user=None) -> LabelingSession:
    """A new open session whose pool is the chosen items, in dataset order."""
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Give the session a name."
    if version.rubric.project_id != project.pk or not version.is_published:
        errors["version"] = "Choose a published rubric version of this project."
    if dataset.project_id != project.pk:
        errors["dataset"] = "Choose a dataset of this project."
    elif dataset.kind != version.rubric.mode:
        errors["dataset"] = (f"The dataset is {dataset.kind}; the rubric is "
                             f"{version.rubric.mode}. Choose a {version.rubric.mode} dataset.")
    elif not dataset.texts_available:
        errors["dataset"] = (f"The texts of {dataset.name} are not distributed with it (ratings "
                             "only): there is nothing to show a labeller. Choose a dataset with "
                             "prompts and responses.")
    member_ids = set(Membership.objects.filter(project=project).values_list("user_id",
                                                                           flat=True))
    users = [u for u in assignees if u.pk in member_ids]
    if len(users) != len(assignees) or not users:
        errors["assignees"] = "Choose one or more members of this project."
    if not 1 <= overlap <= MAX_OVERLAP:
        errors["overlap"] = f"Overlap is a number from 1 to {MAX_OVERLAP}."
    elif users and overlap > len(users):
        errors["overlap"] = (f"Each item needs {overlap} distinct annotators but only "
                             f"{len(users)} are assigned.")
    if claim_ttl_s < MIN_CLAIM_TTL_S:
        errors["claim_ttl_s"] = f"A claim lasts at least {MIN_CLAIM_TTL_S} seconds."
    if errors:
        raise ValidationError(errors)
    item_ids = select_item_ids(dataset=dataset, version=version, selection=selection)
    if not item_ids:
        raise ValidationError({"selection": "No item matches this choice."})
    with transaction.atomic():
        session = LabelingSession.objects.create(
            project=project, rubric_version=version, dataset=dataset, name=name[:120],
            overlap=overlap, claim_ttl_s=claim_ttl_s, selection=selection,
            item_count=len(item_ids), created_by=user,
        )
        SessionItem.objects.bulk_create(
            (SessionItem(session=session, item_id=item_id, position=i)
             for i, item_id in enumerate(item_ids)),
            batch_size=5000,
        )
        SessionAssignee.objects.bulk_create(SessionAssignee(session=session, user=u)
                                            for u in users)
    return session


def session_close(*, session: LabelingSession, now: datetime | None = None) -> bool:
    """Close a session: no more claims, submits or edits; live claims end. False if it was
    closed already."""
    now = now or timezone.now()
    with transaction.atomic():
        # Every annotator's lock, in one order: in-flight claims and submits finish first, and
        # later ones find the session closed (claims.py reads the status under that lock).
        list(SessionAssignee.objects.select_for_update().filter(session=session)
             .order_by("pk").values_list("pk", flat=True))
        changed = LabelingSession.objects.filter(
            pk=session.pk, status=SessionStatus.OPEN
        ).update(status=SessionStatus.CLOSED, closed_at=now)
        live = Assignment.objects.filter(session=session, status=AssignmentStatus.CLAIMED)
        freed = Counter(live.values_list("session_item_id", flat=True))
        live.update(status=AssignmentStatus.EXPIRED)
        if freed:
            free_slots(freed)
    session.status, session.closed_at = SessionStatus.CLOSED, now
    return bool(changed)


def gold_set(*, session: LabelingSession, item_id: int, criterion_key: str, value, note: str,
             user) -> tuple[GoldLabel, bool]:
    """Set the adjudicated label of one item and criterion (calibration prefers it). Returns
    the gold label and whether it is new (not a change of an earlier one)."""
    criterion = next((c for c in session_criteria(session) if c["key"] == criterion_key), None)
    if criterion is None:
        raise ValidationError({"criterion": f"Unknown criterion {criterion_key!r}."})
    if not SessionItem.objects.filter(session=session, item_id=item_id).exists():
        raise ValidationError({"item": "This item is not in the session."})
    cleaned = clean_values([criterion], {criterion_key: value})
    return GoldLabel.objects.update_or_create(
        item_id=item_id, criterion_key=criterion_key, scale_signature=criterion["signature"],
        defaults={"value": cleaned[criterion_key], "note": (note or "").strip(), "user": user},
    )
