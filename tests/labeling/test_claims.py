"""Claims, submits, skips, expiry, undo, edit and close, at the service level.

The invariant checked after each story: active_count of every pool item equals its live claims
plus done labels, and never exceeds k (docs/decisions/0004-labelling-claims.md).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.utils import timezone

from apps.labeling import services
from apps.labeling.claims import expire_stale, label_claim_next
from apps.labeling.models import Assignment, AssignmentStatus, HumanLabel, LabelSource, SessionItem
from tests.factories import MembershipFactory, UserFactory
from tests.labeling.helpers import label_one, make_session

pytestmark = pytest.mark.django_db


def assert_counts_exact(session):
    live = Q(assignments__status__in=[AssignmentStatus.CLAIMED, AssignmentStatus.DONE])
    for item in SessionItem.objects.filter(session=session).annotate(n=Count("assignments",
                                                                              filter=live)):
        assert item.active_count == item.n, item
        assert item.active_count <= session.overlap, item
    for assignee in session.assignees.all():
        mine = Assignment.objects.filter(session=session, user_id=assignee.user_id)
        assert assignee.done_count == mine.filter(status=AssignmentStatus.DONE).count()
        assert assignee.skipped_count == mine.filter(status=AssignmentStatus.SKIPPED).count()


@pytest.fixture
def team(personas):
    people = [personas.labeller, personas.editor, personas.owner]
    for name in ("ann", "bob"):
        user = UserFactory(username=name)
        MembershipFactory(project=personas.project, user=user, role="labeller")
        people.append(user)
    return people


def test_claims_go_in_position_order_and_a_live_claim_is_returned_again(personas):
    session = make_session(personas.project, assignees=[personas.labeller])
    first = label_claim_next(session=session, user=personas.labeller)
    again = label_claim_next(session=session, user=personas.labeller)
    assert first.pk == again.pk
    assert first.session_item.position == 0 and first.session_item.item.external_id == "i0"
    assert first.expires_at - first.claimed_at == timedelta(seconds=900)
    assert_counts_exact(session)


def test_no_item_gets_more_than_k_annotators_and_none_twice(personas, team):
    session = make_session(personas.project, assignees=team, items=3, overlap=2)
    seen: dict[int, set] = {}
    for _ in range(3):
        for user in team:
            claim = label_claim_next(session=session, user=user)
            if claim is None:
                continue
            assert user.pk not in seen.setdefault(claim.session_item.item_id, set())
            seen[claim.session_item.item_id].add(user.pk)
            services.label_submit(session=session, user=user, assignment_id=claim.pk,
                                  values={"correct": 1, "safe": 0})
    assert all(len(users) == 2 for users in seen.values()) and len(seen) == 3
    assert all(label_claim_next(session=session, user=u) is None for u in team)
    assert_counts_exact(session)


def test_submit_stores_one_label_per_criterion_made_on_screen(personas):
    session = make_session(personas.project, assignees=[personas.labeller])
    claim, result = label_one(session, personas.labeller, {"correct": "3", "safe": "yes"},
                              comment="clear")
    assert result.outcome == services.SAVED and result.values == {"correct": "3", "safe": "1"}
    labels = HumanLabel.objects.filter(session=session).order_by("criterion_key")
    assert [(lb.criterion_key, lb.value, lb.annotator, lb.user, lb.source, lb.comment)
            for lb in labels] == [
        ("correct", "3", "labeller", personas.labeller, LabelSource.SCREEN, "clear"),
        ("safe", "1", "labeller", personas.labeller, LabelSource.SCREEN, "clear")]
    assert labels[0].scale_signature == "ordinal:1,2,3"
    claim.refresh_from_db()
    assert claim.status == AssignmentStatus.DONE and claim.submitted_at is not None


def test_every_criterion_is_required_and_the_error_names_it(personas):
    session = make_session(personas.project, assignees=[personas.labeller])
    claim = label_claim_next(session=session, user=personas.labeller)
    with pytest.raises(ValidationError) as caught:
        services.label_submit(session=session, user=personas.labeller, assignment_id=claim.pk,
                              values={"correct": 7})
    errors = caught.value.message_dict
    assert "Correct" in errors["correct"][0] and "7" in errors["correct"][0]
    assert "Safe" in errors["safe"][0]
    assert not HumanLabel.objects.filter(session=session).exists()
    claim.refresh_from_db()
    assert claim.status == AssignmentStatus.CLAIMED


def test_a_double_submit_answers_already_saved_with_the_saved_values(personas):
    session = make_session(personas.project, assignees=[personas.labeller])
    claim, first = label_one(session, personas.labeller, {"correct": 1, "safe": 0})
    second = services.label_submit(session=session, user=personas.labeller,
                                   assignment_id=claim.pk, values={"correct": 3, "safe": 1})
    assert second.outcome == services.ALREADY_SAVED
    assert second.values == {"correct": "1", "safe": "0"}
    assert HumanLabel.objects.filter(session=session).count() == 2
    assert_counts_exact(session)


def test_another_users_claim_cannot_be_submitted(personas):
    session = make_session(personas.project, assignees=[personas.labeller, personas.editor])
    claim = label_claim_next(session=session, user=personas.labeller)
    with pytest.raises(Assignment.DoesNotExist):
        services.label_submit(session=session, user=personas.editor, assignment_id=claim.pk,
                              values={"correct": 1, "safe": 0})


def test_an_expired_claim_returns_its_item_to_the_pool(personas):
    session = make_session(personas.project, assignees=[personas.labeller, personas.editor],
                           items=1, overlap=1, claim_ttl_s=60)
    stale = label_claim_next(session=session, user=personas.labeller)
    assert label_claim_next(session=session, user=personas.editor) is None  # item is taken
    Assignment.objects.filter(pk=stale.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1))
    fresh = label_claim_next(session=session, user=personas.editor)
    assert fresh is not None and fresh.session_item_id == stale.session_item_id
    stale.refresh_from_db()
    assert stale.status == AssignmentStatus.EXPIRED
    assert_counts_exact(session)


def test_expiry_gives_a_place_back_only_once(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=1)
    claim = label_claim_next(session=session, user=personas.labeller)
    later = claim.expires_at + timedelta(seconds=1)
    assert expire_stale(session, now=later) == 1
    assert expire_stale(session, now=later) == 0
    assert SessionItem.objects.get(pk=claim.session_item_id).active_count == 0


def test_a_late_submit_is_accepted_while_the_item_has_room(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=2)
    claim = label_claim_next(session=session, user=personas.labeller)
    expire_stale(session, now=claim.expires_at + timedelta(seconds=1))
    result = services.label_submit(session=session, user=personas.labeller,
                                   assignment_id=claim.pk, values={"correct": 2, "safe": 1})
    assert result.outcome == services.SAVED
    assert_counts_exact(session)


def test_a_late_submit_is_refused_when_others_filled_the_item(personas):
    session = make_session(personas.project, assignees=[personas.labeller, personas.editor],
                           items=1, overlap=1)
    claim = label_claim_next(session=session, user=personas.labeller)
    Assignment.objects.filter(pk=claim.pk).update(expires_at=timezone.now())
    label_one(session, personas.editor)  # the editor takes the freed place and submits
    result = services.label_submit(session=session, user=personas.labeller,
                                   assignment_id=claim.pk, values={"correct": 2, "safe": 1})
    assert result.outcome == services.REFUSED and "not saved" in result.message
    assert not HumanLabel.objects.filter(session=session, user=personas.labeller).exists()
    assert_counts_exact(session)


def test_skip_needs_a_reason_and_frees_the_place_for_others(personas):
    session = make_session(personas.project, assignees=[personas.labeller, personas.editor],
                           items=1)
    claim = label_claim_next(session=session, user=personas.labeller)
    with pytest.raises(ValidationError):
        services.label_skip(session=session, user=personas.labeller, assignment_id=claim.pk,
                            reason="  ")
    assert services.label_skip(session=session, user=personas.labeller,
                               assignment_id=claim.pk, reason="not my language")
    claim.refresh_from_db()
    assert claim.status == AssignmentStatus.SKIPPED and claim.skip_reason == "not my language"
    assert label_claim_next(session=session, user=personas.labeller) is None  # never again
    assert label_claim_next(session=session, user=personas.editor).session_item_id == (
        claim.session_item_id)
    assert_counts_exact(session)


def test_undo_deletes_the_last_labels_and_shows_that_item_again(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=3)
    label_one(session, personas.labeller)
    second, _ = label_one(session, personas.labeller)
    upcoming = label_claim_next(session=session, user=personas.labeller)  # item 3 in hand
    undone = services.label_undo(session=session, user=personas.labeller)
    assert undone.pk == second.pk and undone.status == AssignmentStatus.CLAIMED
    assert not HumanLabel.objects.filter(session=session,
                                         item_id=second.session_item.item_id).exists()
    assert label_claim_next(session=session, user=personas.labeller).pk == second.pk
    _, again = label_one(session, personas.labeller, {"correct": 3, "safe": 0})
    assert again.outcome == services.SAVED
    assert label_claim_next(session=session, user=personas.labeller).pk == upcoming.pk
    assert_counts_exact(session)


def test_undo_with_nothing_submitted_does_nothing(personas):
    session = make_session(personas.project, assignees=[personas.labeller])
    assert services.label_undo(session=session, user=personas.labeller) is None


def test_editing_changes_ones_own_labels_until_the_session_closes(personas):
    session = make_session(personas.project, assignees=[personas.labeller, personas.editor],
                           items=1, overlap=2)
    claim, _ = label_one(session, personas.labeller, {"correct": 1, "safe": 0})
    label_one(session, personas.editor, {"correct": 3, "safe": 1})
    item_id = claim.session_item.item_id
    services.label_edit(session=session, user=personas.labeller, item_id=item_id,
                        values={"correct": 2, "safe": 1}, comment="second look")
    mine = dict(HumanLabel.objects.filter(session=session, user=personas.labeller)
                .values_list("criterion_key", "value"))
    theirs = dict(HumanLabel.objects.filter(session=session, user=personas.editor)
                  .values_list("criterion_key", "value"))
    assert mine == {"correct": "2", "safe": "1"} and theirs == {"correct": "3", "safe": "1"}
    services.session_close(session=session)
    with pytest.raises(services.SessionClosed):
        services.label_edit(session=session, user=personas.labeller, item_id=item_id,
                            values={"correct": 3, "safe": 1})


def test_closing_ends_live_claims_and_stops_claims_and_submits(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=2)
    claim = label_claim_next(session=session, user=personas.labeller)
    assert services.session_close(session=session)
    assert not services.session_close(session=session)
    claim.refresh_from_db()
    assert claim.status == AssignmentStatus.EXPIRED
    assert label_claim_next(session=session, user=personas.labeller) is None
    with pytest.raises(services.SessionClosed):
        services.label_submit(session=session, user=personas.labeller, assignment_id=claim.pk,
                              values={"correct": 1, "safe": 0})
    assert_counts_exact(session)


def test_session_create_refuses_a_dataset_of_the_other_kind_and_too_few_annotators(personas):
    from apps.datasets.models import Kind
    from tests.labeling.helpers import PAIRWISE, make_dataset, make_version

    version = make_version(personas.project, PAIRWISE)
    dataset = make_dataset(personas.project, items=2, kind=Kind.POINTWISE)
    with pytest.raises(ValidationError) as caught:
        services.session_create(project=personas.project, version=version, dataset=dataset,
                                name="x", overlap=3, assignees=[personas.labeller],
                                selection={"mode": "all"})
    errors = caught.value.message_dict
    assert "pairwise" in errors["dataset"][0] and "only 1" in errors["overlap"][0]
    with pytest.raises(ValidationError) as caught:
        services.session_create(project=personas.project, version=version, dataset=dataset,
                                name="x", overlap=1, assignees=[personas.outsider],
                                selection={"mode": "all"})
    assert "members" in caught.value.message_dict["assignees"][0]


def test_a_submit_after_a_skip_of_the_same_item_is_taken_while_there_is_room(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=2)
    claim = label_claim_next(session=session, user=personas.labeller)
    services.label_skip(session=session, user=personas.labeller, assignment_id=claim.pk,
                        reason="oops")
    result = services.label_submit(session=session, user=personas.labeller,
                                   assignment_id=claim.pk, values={"correct": 2, "safe": 1})
    assert result.outcome == services.SAVED
    assert_counts_exact(session)  # done 1, skipped 0


def test_submit_and_next_is_one_step_and_returns_the_following_claim(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=2)
    claim = label_claim_next(session=session, user=personas.labeller)
    result, following, counts = services.label_submit_and_next(
        session=session, user=personas.labeller, assignment_id=claim.pk,
        values={"correct": 2, "safe": 1})
    assert result.outcome == services.SAVED and counts == {"done": 1, "skipped": 0}
    assert following.session_item.item.external_id == "i1"
    result, following, counts = services.label_submit_and_next(
        session=session, user=personas.labeller, assignment_id=following.pk,
        values={"correct": 1, "safe": 1})
    assert following is None and counts["done"] == 2
    assert_counts_exact(session)
