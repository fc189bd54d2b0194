"""Reads for human labels and labelling sessions, and the one loader every session view uses
(STYLE.md 2)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.http import Http404

from apps.labeling.models import (
    Assignment,
    AssignmentStatus,
    HumanLabel,
    LabelingSession,
    SessionAssignee,
    SessionItem,
    SessionStatus,
)
from apps.projects.access import Need, ProjectAccess, get_project_for_user
from apps.rubrics import scales
from apps.rubrics.selectors import version_content


def label_counts(item_ids: Iterable[int]) -> dict[int, int]:
    rows = (
        HumanLabel.objects.filter(item_id__in=list(item_ids))
        .values("item_id")
        .annotate(n=Count("id"))
        .values_list("item_id", "n")
    )
    return dict(rows)


# -- the loader ------------------------------------------------------------------------------

def get_session_for_user(
    user, project_slug: str, session_id: int, *, need: Need = Need.READ,
    annotator: bool = False,
) -> tuple[LabelingSession, ProjectAccess]:
    """The one loader for a labelling session.

    Membership first (outsiders: 404), then the role `need` (403, as everywhere). A session
    exists only for the project's owners and editors and for its assignees: any other member
    gets 404. `annotator=True` pages (the labelling screen, one's history, one's export) need
    the user to be assigned: an owner or editor who is not gets 403.
    """
    access = get_project_for_user(user, project_slug, need=need)
    session = (
        LabelingSession.objects.select_related("rubric_version__rubric", "dataset")
        .filter(project=access.project, pk=session_id)
        .annotate(assigned=Exists(SessionAssignee.objects.filter(session=OuterRef("pk"),
                                                                 user=user)))
        .first()
    )
    if session is None or not (session.assigned or access.can_read):
        raise Http404("No such labelling session")
    if annotator and not session.assigned:
        raise PermissionDenied("You are not an annotator of this session.")
    return session, access


def sessions_for_member(access: ProjectAccess, user):
    """Sessions this member may see: all for owners and editors, assigned ones otherwise."""
    sessions = LabelingSession.objects.filter(project=access.project).select_related(
        "rubric_version__rubric", "dataset")
    if not access.can_read:
        sessions = sessions.filter(assignees__user=user)
    return sessions


def assigned_sessions(project, user, *, limit: int = 20) -> list[LabelingSession]:
    """The open sessions this user labels in (the project home lists them)."""
    return list(
        LabelingSession.objects.filter(project=project, assignees__user=user,
                                       status=SessionStatus.OPEN)
        .select_related("rubric_version__rubric", "dataset")[:limit]
    )


def open_sessions_of(user, *, limit: int = 50) -> list[LabelingSession]:
    """The open sessions this user labels in, across their projects (the landing page)."""
    return list(
        LabelingSession.objects.filter(assignees__user=user, status=SessionStatus.OPEN,
                                       project__memberships__user=user)
        .select_related("project", "rubric_version__rubric", "dataset")
        .order_by("project__name", "name")[:limit]
    )


# -- criteria ---------------------------------------------------------------------------------

# Published versions never change (DESIGN.md), so their criteria are kept per process, keyed by
# id and content hash (a hash names exactly one content, whatever database the id came from).
_PUBLISHED_CRITERIA: dict[tuple[int, str], list[dict]] = {}


def session_criteria(session: LabelingSession) -> list[dict]:
    """The version's criteria as content, each with its scale signature, in order. Read once per
    process for a published version, once per request otherwise. Callers must not change it."""
    version = session.rubric_version
    key = (version.pk, version.content_hash)
    cached = _PUBLISHED_CRITERIA.get(key) if version.is_published and key[1] else None
    if cached is None:
        cached = version_content(version)["criteria"]
        for criterion in cached:
            criterion["signature"] = scales.scale_signature(criterion["scale"])
        if version.is_published and key[1]:
            _PUBLISHED_CRITERIA[key] = cached
    return cached


def same_scale(criteria: list[dict]) -> Q:
    """Labels of these criteria on their current scales (key and scale signature)."""
    condition = Q()
    for c in criteria:
        condition |= Q(criterion_key=c["key"], scale_signature=c["signature"])
    return condition


def repeat_counts(session: LabelingSession) -> list[tuple[str, int]]:
    """[(annotator, items)]: how many of the session's items each assignee had labelled
    before (imported, or in another session) on the session's criteria. Their answers here
    are a new round (test-retest), kept beside the earlier ones."""
    names = list(SessionAssignee.objects.filter(session=session)
                 .values_list("user__username", flat=True))
    if not names:
        return []
    pool = SessionItem.objects.filter(session=session).values("item_id")
    rows = (HumanLabel.objects.filter(item_id__in=pool, annotator__in=names)
            .filter(same_scale(session_criteria(session)))
            .exclude(session=session)
            .values("annotator").annotate(n=Count("item_id", distinct=True))
            .values_list("annotator", "n").order_by("annotator"))
    return list(rows)


# -- progress -------------------------------------------------------------------------------

@dataclass
class AnnotatorProgress:
    username: str
    user_id: int
    done: int = 0
    skipped: int = 0
    claimed: int = 0
    expired: int = 0


@dataclass
class SessionProgress:
    session: LabelingSession
    annotators: list[AnnotatorProgress] = field(default_factory=list)

    @property
    def labels_needed(self) -> int:
        return self.session.item_count * self.session.overlap

    @property
    def done(self) -> int:
        return sum(a.done for a in self.annotators)

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.labels_needed if self.labels_needed else 0.0


def sessions_progress(sessions: list[LabelingSession], *, only_user=None) -> list[SessionProgress]:
    """Progress per annotator for a list of sessions in two queries, whatever their number."""
    ids = [s.pk for s in sessions]
    assignees = SessionAssignee.objects.filter(session_id__in=ids).select_related("user")
    if only_user is not None:
        assignees = assignees.filter(user=only_user)
    by_session: dict[int, dict[int, AnnotatorProgress]] = {pk: {} for pk in ids}
    for a in assignees.order_by("user__username"):
        by_session[a.session_id][a.user_id] = AnnotatorProgress(a.user.username, a.user_id)
    counts = Assignment.objects.filter(session_id__in=ids)
    if only_user is not None:
        counts = counts.filter(user=only_user)
    rows = counts.values_list("session_id", "user_id", "status").annotate(n=Count("id"))
    for session_id, user_id, status, n in rows.order_by():
        progress = by_session[session_id].get(user_id)
        if progress is not None:  # an annotator removed from the session keeps their labels
            setattr(progress, status, n)
    return [SessionProgress(s, list(by_session[s.pk].values())) for s in sessions]


def session_done(session: LabelingSession) -> dict:
    """The session's labels done so far against those it needs (items x k), for the progress
    bar of the labelling screen: counts only, nobody's values. Summed from the annotators' own
    counters (a few rows), not by counting assignments."""
    done = SessionAssignee.objects.filter(session=session).aggregate(n=Sum("done_count"))["n"]
    needed = session.item_count * session.overlap
    done = done or 0
    return {"done": done, "needed": needed,
            "percent": 100.0 * done / needed if needed else 0.0}


def own_progress(session: LabelingSession, user) -> dict:
    """The annotator's own counts, for the labelling screen (never anyone else's)."""
    row = SessionAssignee.objects.filter(session=session, user=user).values_list(
        "done_count", "skipped_count").order_by().first() or (0, 0)
    return {"done": row[0], "skipped": row[1]}


# -- one's own labels -----------------------------------------------------------------------

def own_labels(session: LabelingSession, user, item_ids: Iterable[int]) -> dict[int, dict]:
    """{item id: {criterion key: value text}} of this user's labels in this session."""
    out: dict[int, dict] = {}
    rows = HumanLabel.objects.filter(session=session, user=user, item_id__in=list(item_ids))
    for item_id, key, value in rows.values_list("item_id", "criterion_key", "value"):
        out.setdefault(item_id, {})[key] = value
    return out


HISTORY_PAGE = 50


def own_history(session: LabelingSession, user, *, page: int) -> dict:
    """One page of the user's submitted items in this session, newest first, with their values.

    Only the user's own assignments and labels are read: the history is blind like the screen.
    """
    done = (
        Assignment.objects.filter(session=session, user=user, status=AssignmentStatus.DONE)
        .select_related("session_item__item")
        .order_by("-submitted_at", "-id")
    )
    window = list(done[(page - 1) * HISTORY_PAGE: page * HISTORY_PAGE + 1])
    rows = window[:HISTORY_PAGE]
    values = own_labels(session, user, [a.session_item.item_id for a in rows])
    return {
        "rows": [(a, values.get(a.session_item.item_id, {})) for a in rows],
        "page": page, "has_next": len(window) > HISTORY_PAGE, "has_previous": page > 1,
    }
