"""Many annotators at once, each in its own thread with its own database connection, against
the real database (run with DATABASE_URL=postgres://... for PostgreSQL's FOR UPDATE SKIP LOCKED;
on SQLite the same tests hold because write transactions are serialized by BEGIN IMMEDIATE).

No item ever gets more than k annotators, no claim is shared, no label is lost or doubled, and
active_count stays exact (docs/decisions/0004-labelling-claims.md).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
from django.db import close_old_connections, connection
from django.db.models import Count, Q

from apps.labeling import services
from apps.labeling.claims import label_claim_next
from apps.labeling.models import (
    Assignment,
    AssignmentStatus,
    HumanLabel,
    LabelingSession,
    SessionItem,
)
from tests.factories import MembershipFactory, UserFactory
from tests.labeling.helpers import make_session

pytestmark = pytest.mark.django_db(transaction=True)


def _annotators(project, n: int) -> list:
    users = []
    for i in range(n):
        user = UserFactory(username=f"annotator{i:02d}")
        MembershipFactory(project=project, user=user, role="labeller")
        users.append(user)
    return users


def _run_threads(target, args_list) -> list:
    errors: list = []

    def wrapper(*args):
        try:
            target(*args)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            connection.close()  # each thread's own connection

    threads = [threading.Thread(target=wrapper, args=args) for args in args_list]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return errors


def _fresh(session) -> LabelingSession:
    # Each thread loads its own copy, as a request would.
    return LabelingSession.objects.select_related("dataset", "rubric_version__rubric").get(
        pk=session.pk)


def assert_invariants(session):
    live = Q(assignments__status__in=[AssignmentStatus.CLAIMED, AssignmentStatus.DONE])
    done = Q(assignments__status=AssignmentStatus.DONE)
    for item in SessionItem.objects.filter(session=session).annotate(
            n=Count("assignments", filter=live), d=Count("assignments", filter=done)):
        assert item.active_count == item.n, item
        assert item.d <= item.active_count <= session.overlap, item
    labels = Counter(HumanLabel.objects.filter(session=session).values_list(
        "item_id", "criterion_key"))
    assert max(labels.values(), default=0) <= session.overlap
    done_pairs = set(Assignment.objects.filter(session=session, status=AssignmentStatus.DONE)
                     .values_list("session_item__item_id", "user__username"))
    label_pairs = set(HumanLabel.objects.filter(session=session).values_list("item_id",
                                                                              "annotator"))
    assert done_pairs == label_pairs  # every done claim has its labels, and nothing else
    counts = Counter(Assignment.objects.filter(session=session).values_list("user_id",
                                                                            "status"))
    for assignee in session.assignees.all():  # the screen's own counts match the rows
        assert assignee.done_count == counts[(assignee.user_id, AssignmentStatus.DONE)]
        assert assignee.skipped_count == counts[(assignee.user_id, AssignmentStatus.SKIPPED)]


def test_annotators_claiming_at_the_same_moment_never_share_or_exceed_k(personas):
    users = _annotators(personas.project, 12)
    session = make_session(personas.project, assignees=users, items=5, overlap=2)
    barrier = threading.Barrier(len(users))
    got: dict[str, int | None] = {}

    def claim(user):
        close_old_connections()
        own = _fresh(session)
        barrier.wait()
        assignment = label_claim_next(session=own, user=user)
        got[user.username] = assignment.session_item.item_id if assignment else None

    assert not _run_threads(claim, [(u,) for u in users])
    per_item = Counter(item for item in got.values() if item is not None)
    assert sorted(per_item.values()) == [2, 2, 2, 2, 2]  # 10 places for 12 people
    assert list(got.values()).count(None) == 2
    assert Assignment.objects.filter(session=session).count() == 10
    assert_invariants(session)


def test_annotators_labelling_concurrently_lose_and_double_nothing(personas):
    users = _annotators(personas.project, 8)
    session = make_session(personas.project, assignees=users, items=30, overlap=3)
    believed: dict[str, set] = {u.username: set() for u in users}

    def work(user, seed):
        close_old_connections()
        rng = random.Random(seed)
        own = _fresh(session)
        while (assignment := label_claim_next(session=own, user=user)) is not None:
            if rng.random() < 0.1:
                services.label_skip(session=own, user=user, assignment_id=assignment.pk,
                                    reason="not sure")
                continue
            values = {"correct": rng.choice([1, 2, 3]), "safe": rng.choice([0, 1])}
            result = services.label_submit(session=own, user=user,
                                           assignment_id=assignment.pk, values=values)
            assert result.outcome == services.SAVED
            believed[user.username].add(assignment.session_item.item_id)
            if rng.random() < 0.2:  # a double click
                again = services.label_submit(session=own, user=user,
                                              assignment_id=assignment.pk, values=values)
                assert again.outcome == services.ALREADY_SAVED

    assert not _run_threads(work, [(u, n) for n, u in enumerate(users)])
    stored = {u.username: set(HumanLabel.objects.filter(session=session, user=u)
                              .values_list("item_id", flat=True)) for u in users}
    assert stored == believed
    assert HumanLabel.objects.filter(session=session).count() == 2 * sum(
        len(items) for items in believed.values())
    assert_invariants(session)
    # With 8 annotators, 10% skips and k = 3, every item gets its 3 labels.
    full = SessionItem.objects.filter(session=session, active_count=3).count()
    assert full == 30


def test_abandoned_claims_expire_and_are_finished_by_others(personas):
    users = _annotators(personas.project, 6)
    session = make_session(personas.project, assignees=users, items=12, overlap=2)
    LabelingSession.objects.filter(pk=session.pk).update(claim_ttl_s=1)
    late: Counter = Counter()

    # Two annotators take an item each, then go quiet while the others work.
    claims = {u.pk: label_claim_next(session=_fresh(session), user=u) for u in users[:2]}

    def abandon_then_retry(user):
        close_old_connections()
        own = _fresh(session)
        claim = claims[user.pk]
        time.sleep(1.3)  # the claim runs out while others work
        result = services.label_submit(session=own, user=user, assignment_id=claim.pk,
                                       values={"correct": 2, "safe": 1})
        late[result.outcome] += 1

    def work(user):
        close_old_connections()
        own = _fresh(session)
        deadline = time.monotonic() + 20
        idle = 0
        while time.monotonic() < deadline and idle < 4:
            assignment = label_claim_next(session=own, user=user)
            if assignment is None:
                idle += 1
                time.sleep(0.5)  # claims of the abandoners may come back
                continue
            idle = 0
            services.label_submit(session=own, user=user, assignment_id=assignment.pk,
                                  values={"correct": 3, "safe": 0})

    jobs = [(abandon_then_retry, users[0]), (abandon_then_retry, users[1])] + [
        (work, u) for u in users[2:]]
    errors = _run_threads(lambda fn, user: fn(user), jobs)
    assert not errors, errors
    assert sum(late.values()) == 2 and set(late) <= {services.SAVED, services.REFUSED}
    assert_invariants(session)
    assert SessionItem.objects.filter(session=session, active_count=2).count() == 12
