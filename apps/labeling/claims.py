"""Handing out work: claims are rows, made and expired in the database
(docs/decisions/0004-labelling-claims.md).

Invariant, kept inside every transaction that changes a claim:

    SessionItem.active_count == live claims + done labels of that item in its session
                              <= session.overlap (k)

Lock order, the same in every writer so that none can deadlock another:
the annotator's SessionAssignee row, then Assignment rows, then SessionItem rows.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from apps.labeling.models import (
    Assignment,
    AssignmentStatus,
    LabelingSession,
    SessionAssignee,
    SessionItem,
    SessionStatus,
)


def shown_order_for(session_id: int, item_id: int, user_id: int) -> str:
    """Pairwise: which response this annotator sees on the left for this item.

    From a hash, not a random draw: the same (session, item, annotator) always gets the same
    order (an undo shows the item as before), and over many items each order comes up about
    half of the time, so the humans' own position bias is measurable.
    """
    digest = hashlib.sha256(f"{session_id}:{item_id}:{user_id}".encode()).digest()
    return "AB" if digest[0] % 2 == 0 else "BA"


def lock_annotator(session: LabelingSession, user) -> bool:
    """Take the annotator's row lock for the rest of the transaction; False if not assigned.

    On PostgreSQL this serializes one person's requests (two tabs, a double click). SQLite
    ignores FOR UPDATE, but there every write transaction is BEGIN IMMEDIATE and so already
    runs alone.
    """
    rows = SessionAssignee.objects.select_for_update().filter(session=session, user=user)
    return bool(list(rows.values_list("pk", flat=True)[:1]))


def live_claim(session: LabelingSession, user) -> Assignment | None:
    """The annotator's current claim, newest first (an undone item comes back before the item
    that was handed out after it), with its item."""
    return (
        Assignment.objects.filter(session=session, user=user, status=AssignmentStatus.CLAIMED)
        .select_related("session_item__item")
        .order_by("-claimed_at", "-id")
        .first()
    )


def free_slots(item_counts: Counter) -> None:
    """Give back pool places: {session item id: how many claims ended}."""
    by_n: dict[int, list[int]] = {}
    for item_id, n in item_counts.items():
        by_n.setdefault(n, []).append(item_id)
    for n, ids in by_n.items():
        SessionItem.objects.filter(pk__in=ids).update(active_count=F("active_count") - n)


def expire_stale(session: LabelingSession, *, now: datetime | None = None) -> int:
    """Expire the session's claims whose time is up and return their places to the pool.

    One UPDATE ... RETURNING: two annotators sweeping at once cannot both expire a claim
    (the second waits for the first's row lock, then finds the row no longer 'claimed'), so a
    place is never given back twice. Must run inside the caller's transaction.
    """
    now = now or timezone.now()
    table = Assignment._meta.db_table
    with connection.cursor() as cursor:
        # The literal 'claimed' matches the partial index assignment_live_idx.
        cursor.execute(
            f"UPDATE {table} SET status = 'expired' "  # noqa: S608 - table name is ours
            "WHERE session_id = %s AND status = 'claimed' AND expires_at < %s "
            "RETURNING session_item_id",
            [session.pk, now],
        )
        freed = Counter(row[0] for row in cursor.fetchall())
    if freed:
        free_slots(freed)
    return sum(freed.values())


def _first_with_room(session: LabelingSession, user):
    """The first pool item (by position) with room that this annotator never had."""
    mine = Assignment.objects.filter(session_item=OuterRef("pk"), user=user)
    pool = (
        SessionItem.objects.filter(session=session, active_count__lt=session.overlap)
        .filter(~Exists(mine))
        .order_by("position")
        .select_related("item")  # the screen shows it next; of=("self",) locks only the slot
    )
    if connection.features.has_select_for_update_skip_locked:
        # PostgreSQL: items another annotator is claiming right now are passed over, not
        # waited for, so claimers never queue behind each other.
        pool = pool.select_for_update(skip_locked=True, of=("self",))
    # SQLite has no row locks; its write transactions are serialized (BEGIN IMMEDIATE), so a
    # plain read inside this transaction is already exclusive.
    return pool.first()


def _session_is_open(session: LabelingSession) -> bool:
    # Read again under the annotator lock: session_close takes every annotator's lock, so a
    # claim that gets here after a close sees it.
    status = LabelingSession.objects.filter(pk=session.pk).values_list("status", flat=True)
    return status.first() == SessionStatus.OPEN


def label_claim_next(*, session: LabelingSession, user,
                     now: datetime | None = None) -> Assignment | None:
    """The annotator's current claim, else a new claim on the next item that needs them, else
    None (nothing left for them, or the session is closed)."""
    if not session.is_open:
        return None
    current = live_claim(session, user)  # the common case costs one read, no transaction
    if current is not None:
        return current
    now = now or timezone.now()
    with transaction.atomic():
        if not lock_annotator(session, user) or not _session_is_open(session):
            return None
        current = live_claim(session, user)
        if current is not None:
            return current
        expire_stale(session, now=now)
        for _attempt in range(5):
            candidate = _first_with_room(session, user)
            if candidate is None:
                return None
            # Conditional increment: belt and braces over the lock, it can never pass k.
            taken = SessionItem.objects.filter(
                pk=candidate.pk, active_count__lt=session.overlap
            ).update(active_count=F("active_count") + 1)
            if taken:
                break
        else:
            return None
        order = shown_order_for(session.pk, candidate.item_id, user.pk) if (
            session.is_pairwise) else ""
        assignment = Assignment.objects.create(
            session=session, session_item=candidate, user=user, shown_order=order,
            claimed_at=now, expires_at=now + timedelta(seconds=session.claim_ttl_s),
        )
    assignment.session_item = candidate  # with its item, as live_claim loads it
    return assignment
