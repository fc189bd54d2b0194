"""Labelling pages: sessions (list, create, detail, close, adjudication, exports) and the
annotator's own pages (the labelling screen, skip, undo, history, edit).

Every view loads its session through selectors.get_session_for_user. The annotator's pages
get only the item, the rubric and the annotator's own answers (see present.py): they are blind
to judge verdicts and to other annotators' labels.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.datasets.selectors import get_dataset_for_user
from apps.labeling import adjudication, exports, interop_export, present, services
from apps.labeling.agreement import session_agreement
from apps.labeling.claims import label_claim_next
from apps.labeling.forms import ForeignLabelsForm, GoldForm, SessionForm, SkipForm
from apps.labeling.models import Assignment, AssignmentStatus
from apps.labeling.position import human_position_bias
from apps.labeling.selectors import (
    get_session_for_user,
    own_history,
    own_labels,
    own_progress,
    repeat_counts,
    session_criteria,
    session_done,
    sessions_for_member,
    sessions_progress,
)
from apps.projects.access import Need, get_project_for_user
from apps.projects.models import Membership


def _page(request) -> int:
    raw = request.GET.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 10**6 else 1


# -- sessions ---------------------------------------------------------------------------------

@login_required
@require_GET
def session_list(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.MEMBER)
    sessions = list(sessions_for_member(access, request.user)[:200])
    # A labeller sees their own progress only; owners and editors every annotator's.
    only = None if access.can_read else request.user
    return render(request, "labeling/session_list.html", {
        "access": access, "project": access.project, "nav": "labelling",
        "rows": sessions_progress(sessions, only_user=only),
    })


def _session_form(access, data=None, initial=None) -> SessionForm:
    from apps.datasets.models import Dataset
    from apps.judging.models import JudgeRun
    from apps.rubrics.models import RubricVersion

    project = access.project
    versions = (RubricVersion.objects.filter(rubric__project=project, published_at__isnull=False)
                .select_related("rubric").order_by("rubric__name", "-number"))
    datasets = Dataset.objects.filter(project=project)
    runs = JudgeRun.objects.filter(project=project).select_related("dataset")[:200]
    members = Membership.objects.filter(project=project).select_related("user")
    return SessionForm(data, initial=initial, versions=versions, datasets=datasets, runs=runs,
                       members=members)


@login_required
@require_http_methods(["GET", "POST"])
def session_create(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.WRITE)
    # A link may prefill the form, e.g. the calibration page's "label these disagreements".
    initial = {key: request.GET[key] for key in ("name", "version", "dataset", "mode", "run",
                                                 "items")
               if request.method == "GET" and request.GET.get(key)}
    form = _session_form(access, request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        from apps.datasets.models import Dataset
        from apps.rubrics.models import RubricVersion

        d = form.cleaned_data
        version = RubricVersion.objects.select_related("rubric").get(
            pk=int(d["version"]), rubric__project=access.project)
        dataset = Dataset.objects.get(pk=int(d["dataset"]), project=access.project)
        users = list(get_user_model().objects.filter(
            pk__in=[int(pk) for pk in d["assignees"]]))
        try:
            session = services.session_create(
                project=access.project, version=version, dataset=dataset, name=d["name"],
                overlap=d["overlap"], assignees=users, selection=form.selection(),
                claim_ttl_s=d["claim_ttl_s"], user=request.user)
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                target = {"sample_size": "sample_size", "filter": "filter", "run": "run",
                          "items": "items", "selection": "mode"}.get(name, name)
                form.add_error(target if target in form.fields else None, errors)
        else:
            messages.success(request, f"Session '{session.name}' created with "
                                      f"{session.item_count:,} items.")
            repeats = repeat_counts(session)
            if repeats:
                said = ", ".join(f"{name} {n:,}" for name, n in repeats)
                messages.warning(request, (
                    f"Some annotators labelled some of these items before ({said}): their "
                    "answers here are stored as a new round beside the earlier ones "
                    "(test-retest); calibration uses each annotator's latest round."))
            return redirect("session_detail", slug=slug, session_id=session.pk)
    return render(request, "labeling/session_form.html", {
        "access": access, "project": access.project, "form": form, "nav": "labelling",
    }, status=422 if form.errors else 200)


@login_required
@require_GET
def session_detail(request: HttpRequest, slug: str, session_id: int) -> HttpResponse:
    session, access = get_session_for_user(request.user, slug, session_id, need=Need.READ)
    progress = sessions_progress([session])[0]
    return render(request, "labeling/session_detail.html", {
        "access": access, "project": access.project, "session": session, "nav": "labelling",
        "progress": progress, "agreement": session_agreement(session),
        "repeats": repeat_counts(session),
        "position": human_position_bias(exports.session_labels(session),
                                        session_criteria(session)),
    })


@login_required
@require_POST
def session_close(request: HttpRequest, slug: str, session_id: int) -> HttpResponse:
    session, _ = get_session_for_user(request.user, slug, session_id, need=Need.WRITE)
    if services.session_close(session=session):
        messages.success(request, "Session closed: labels can no longer be added or changed.")
    else:
        messages.info(request, "The session was already closed.")
    return redirect("session_detail", slug=slug, session_id=session.pk)


# -- labels from other tools --------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def labels_import(request: HttpRequest, slug: str) -> HttpResponse:
    """Labels from Label Studio or Argilla into a dataset (owners and editors), the same
    service as `labels_import`."""
    from django.conf import settings

    from apps.datasets.models import Dataset
    from apps.labeling.interop_import import labels_import as import_labels
    from apps.rubrics.models import RubricVersion

    access = get_project_for_user(request.user, slug, need=Need.WRITE)
    versions = (RubricVersion.objects.filter(rubric__project=access.project,
                                             published_at__isnull=False)
                .select_related("rubric").order_by("rubric__name", "-number"))
    datasets = Dataset.objects.filter(project=access.project).order_by("name")
    form = ForeignLabelsForm(request.POST or None, request.FILES or None, versions=versions,
                             datasets=datasets)
    context = {"access": access, "project": access.project, "nav": "labelling", "form": form}
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        upload = d["export"]
        limit = settings.DATASET_MAX_UPLOAD_MB * 1024 * 1024
        if upload.size > limit:
            form.add_error("export", f"The file is {upload.size / 1048576:.1f} MB; the limit "
                                     f"is {settings.DATASET_MAX_UPLOAD_MB} MB.")
        else:
            result = import_labels(
                dataset=datasets.get(pk=int(d["dataset"])),
                version=versions.get(pk=int(d["version"])), data=upload.read(),
                mapping_text=d["mapping"], new_round=d["new_round"])
            if result.ok:
                messages.success(request, f"{result.summary()}.")
                return redirect("session_list", slug=slug)
            context.update(problems=result.problems, summary=result.summary())
    status = 422 if request.method == "POST" else 200
    return render(request, "labeling/labels_import.html", context, status=status)


# -- adjudication -----------------------------------------------------------------------------

def _show(request) -> str:
    show = request.GET.get("show", "open")
    return show if show in adjudication.SHOW else "open"


@login_required
@require_http_methods(["GET", "POST"])
def adjudicate(request: HttpRequest, slug: str, session_id: int) -> HttpResponse:
    """Disagreements one page at a time (a cursor, not page numbers: saving takes rows out of
    the "open" list). Saving a gold label by htmx swaps that row in place (the place is kept)
    and appends the next disagreement after the page's last one, so the queue stays full."""
    session, access = get_session_for_user(request.user, slug, session_id, need=Need.OWN)
    show = _show(request)
    after = adjudication.Cursor.parse(request.GET.get("after"))
    context = {"access": access, "project": access.project, "session": session,
               "nav": "labelling", "show": show, "after": after}
    if request.method == "POST":
        return _gold_save(request, session, context)
    page = adjudication.disagreement_page(session, show=show, after=after)
    rows = page["rows"]
    return render(request, "labeling/adjudicate.html", {
        **context, "rows": rows, "next": page["next"],
        "tail": rows[-1].cursor if rows else None,
        "counts": adjudication.disagreement_counts(session),
    })


def _gold_save(request, session, context: dict) -> HttpResponse:
    form = GoldForm(request.POST)
    if not form.is_valid():
        error = ("Choose a value for the gold label." if "value" in form.errors
                 else "This form lost its item; reload the page.")
        return _gold_answer(request, session, context, form.cleaned_data, error=error)
    d = form.cleaned_data
    try:
        _, created = services.gold_set(session=session, item_id=d["item"],
                                       criterion_key=d["criterion"], value=d["value"],
                                       note=d["note"], user=request.user)
    except ValidationError as exc:
        return _gold_answer(request, session, context, d, error=" ".join(exc.messages))
    return _gold_answer(request, session, context, d, grows=created)


def _gold_answer(request, session, context: dict, data: dict, *, error: str = "",
                 grows: bool = False) -> HttpResponse:
    """After a gold POST. htmx: the row again (saved, or with its error) and, when the open
    queue lost a row, the next disagreement after the page's tail. Plain POST: back to the
    same page at the same row (its anchor), or the page with the error (422)."""
    row = following = None
    if isinstance(data.get("item"), int) and data.get("criterion"):
        tail = None
        if request.htmx and grows and context["show"] == "open":
            tail = adjudication.Cursor.parse(request.POST.get("tail"))
        row, following = adjudication.disagreement_row(
            session, item_id=data["item"], criterion_key=data["criterion"], then_after=tail)
    if not request.htmx:
        if error:
            page = adjudication.disagreement_page(session, show=context["show"],
                                                  after=context["after"])
            for shown in page["rows"]:
                if row is not None and shown.anchor == row.anchor:
                    shown.error = error
            return render(request, "labeling/adjudicate.html", {
                **context, "rows": page["rows"], "next": page["next"],
                "counts": adjudication.disagreement_counts(session),
                "tail": page["rows"][-1].cursor if page["rows"] else None,
                "form_error": "" if row is not None else error,
            }, status=422)
        messages.success(request, "Gold label saved.")
        anchor = f"#{row.anchor}" if row is not None else ""
        return redirect(request.get_full_path() + anchor)
    if row is None:
        # The item is not (or no longer) a disagreement of this session; nothing to show.
        return HttpResponse(error or "Saved.", status=422 if error else 200,
                            content_type="text/plain; charset=utf-8")
    row.saved, row.error = not error, error
    return render(request, "labeling/adjudicate.html#saved", {
        **context, "row": row, "following": following,
        "tail": following.cursor if following is not None else None,
    }, status=422 if error else 200)


# -- exports ----------------------------------------------------------------------------------

EXPORT_FORMATS = ("jsonl", "csv")
TOOL_FORMATS = {"labelstudio": interop_export.labelstudio_tasks,
                "argilla": interop_export.argilla_records}


def _refuse_format(fmt: str, known) -> HttpResponse:
    return HttpResponseBadRequest(
        f"Unknown format {fmt[:20]!r}: use " + " or ".join(f"format={f}" for f in known) + ".",
        content_type="text/plain; charset=utf-8")


def _download(labels, dataset, *, fmt: str, name: str, criteria=None) -> HttpResponse:
    """Stream labels in a format: the row format (jsonl, csv) for any labels; the formats of
    other tools (labelstudio, argilla) when the rubric's criteria are known (a session)."""
    known = EXPORT_FORMATS + (tuple(TOOL_FORMATS) if criteria is not None else ())
    if fmt not in known:
        # Nothing was read for a format we refuse: rows are produced lazily.
        return _refuse_format(fmt, known)
    if fmt in TOOL_FORMATS:
        body = TOOL_FORMATS[fmt](labels, dataset, criteria)
        kind, suffix = "application/json", f"{fmt}.json"
    else:
        rows = exports.export_rows(labels, dataset)
        if fmt == "csv":
            body, kind = exports.csv_lines(rows, pairwise=dataset.kind == "pairwise"), "text/csv"
        else:
            body, kind = exports.jsonl_lines(rows), "application/x-ndjson"
        suffix = fmt
    response = StreamingHttpResponse(body, content_type=f"{kind}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.{suffix}"'
    return response


@login_required
@require_GET
def session_export(request: HttpRequest, slug: str, session_id: int) -> HttpResponse:
    """A session's labels; an annotator who does not manage the project gets only their own.
    Also in Label Studio's and Argilla's formats (format=labelstudio, format=argilla)."""
    session, access = get_session_for_user(request.user, slug, session_id, need=Need.MEMBER)
    mine = not access.can_read
    labels = exports.session_labels(session, user=request.user if mine else None)
    name = f"session-{session.pk}-labels" + (f"-{request.user.get_username()}" if mine else "")
    return _download(labels, session.dataset, fmt=request.GET.get("format", "jsonl"), name=name,
                     criteria=session_criteria(session))


@login_required
@require_GET
def dataset_labels_export(request: HttpRequest, slug: str, dataset_id: int) -> HttpResponse:
    dataset, _ = get_dataset_for_user(request.user, slug, dataset_id, need=Need.READ)
    return _download(exports.dataset_labels(dataset), dataset,
                     fmt=request.GET.get("format", "jsonl"), name=f"dataset-{dataset.pk}-labels")


# -- the labelling screen ---------------------------------------------------------------------

def _screen(request, session, access, assignment, *, posted=None, errors=None,
            skip_form=None, mine: dict | None = None, status: int = 200) -> HttpResponse:
    criteria = session_criteria(session)
    shown = selected = None
    if assignment is not None:
        item = assignment.session_item.item
        shown = present.present_item(item, pairwise=session.is_pairwise,
                                     shown_order=assignment.shown_order)
        selected = posted or {}
    context = {
        "access": access, "project": access.project, "session": session, "nav": "labelling",
        "assignment": assignment, "shown": shown,
        "criteria": present.criteria_views(criteria, selected=selected, errors=errors),
        "errors": errors or {}, "comment": (posted or {}).get("_comment", ""),
        "skip_form": skip_form or SkipForm(initial={"assignment": getattr(assignment, "pk",
                                                                         None)}),
        "mine": mine if mine is not None else own_progress(session, request.user),
        "progress": session_done(session),
    }
    template = "labeling/label_screen.html"
    if request.htmx:
        template += "#panel"
    return render(request, template, context, status=status)


def _next(request, session, access, slug) -> HttpResponse:
    """After a write: the next item in the panel (htmx), or a redirect (plain POST)."""
    if not request.htmx:
        return redirect("label_screen", slug=slug, session_id=session.pk)
    return _screen(request, session, access,
                   label_claim_next(session=session, user=request.user))


def _assignment_id(request) -> int:
    raw = request.POST.get("assignment", "")
    if not raw.isdigit():
        raise Http404("No such item")
    return int(raw)


@login_required
@require_http_methods(["GET", "POST"])
def label_screen(request: HttpRequest, slug: str, session_id: int) -> HttpResponse:
    session, access = get_session_for_user(request.user, slug, session_id, need=Need.MEMBER,
                                           annotator=True)
    if request.method == "GET":
        return _screen(request, session, access,
                       label_claim_next(session=session, user=request.user))
    criteria = session_criteria(session)
    values, comment = present.read_answers(request.POST, criteria)
    if not request.POST.get("assignment", "").isdigit():
        messages.error(request, "This form lost its item; here is your current one.")
        return _screen(request, session, access,
                       label_claim_next(session=session, user=request.user), status=422)
    try:
        result, following, counts = services.label_submit_and_next(
            session=session, user=request.user, assignment_id=_assignment_id(request),
            values=values, comment=comment, sides=True)
    except Assignment.DoesNotExist:
        raise Http404("No such item") from None
    except services.SessionClosed as exc:
        messages.error(request, " ".join(exc.messages))
        return _next(request, session, access, slug)
    except ValidationError as exc:
        assignment = (Assignment.objects.select_related("session_item__item")
                      .get(pk=_assignment_id(request), session=session, user=request.user))
        return _screen(request, session, access, assignment,
                       posted={**values, "_comment": comment},
                       errors={k: " ".join(v) for k, v in exc.message_dict.items()},
                       status=422)
    assignment = result.assignment
    said = present.describe(criteria, result.values, assignment.shown_order)
    if result.outcome == services.ALREADY_SAVED:
        messages.info(request, f"{result.message} Saved values: {said}.")
    elif result.outcome == services.REFUSED:
        messages.warning(request, result.message)
    else:
        again = f" {result.message}" if result.round > 1 else ""
        messages.success(request, f"Saved: {said}.{again}")
    if not request.htmx:
        return redirect("label_screen", slug=slug, session_id=session.pk)
    return _screen(request, session, access, following, mine=counts)


@login_required
@require_POST
def label_skip(request: HttpRequest, slug: str, session_id: int) -> HttpResponse:
    session, access = get_session_for_user(request.user, slug, session_id, need=Need.MEMBER,
                                           annotator=True)
    form = SkipForm(request.POST)
    if not form.is_valid():
        current = label_claim_next(session=session, user=request.user)
        return _screen(request, session, access, current, skip_form=form, status=422)
    try:
        skipped = services.label_skip(session=session, user=request.user,
                                      assignment_id=form.cleaned_data["assignment"],
                                      reason=form.cleaned_data["reason"])
    except Assignment.DoesNotExist:
        raise Http404("No such item") from None
    messages.info(request, "Skipped; the item went back to the pool." if skipped
                  else "This item was no longer yours to skip.")
    return _next(request, session, access, slug)


@login_required
@require_POST
def label_undo(request: HttpRequest, slug: str, session_id: int) -> HttpResponse:
    session, access = get_session_for_user(request.user, slug, session_id, need=Need.MEMBER,
                                           annotator=True)
    try:
        undone = services.label_undo(session=session, user=request.user)
    except services.SessionClosed as exc:
        messages.error(request, " ".join(exc.messages))
        return _next(request, session, access, slug)
    if undone is None:
        messages.info(request, "Nothing to undo in this session.")
    else:
        messages.info(request, "Undone: your last labels were removed; the item is shown "
                               "again.")
    return _next(request, session, access, slug)


# -- one's own labels -------------------------------------------------------------------------

@login_required
@require_GET
def label_history(request: HttpRequest, slug: str, session_id: int) -> HttpResponse:
    session, access = get_session_for_user(request.user, slug, session_id, need=Need.MEMBER,
                                           annotator=True)
    criteria = session_criteria(session)
    history = own_history(session, request.user, page=_page(request))
    rows = [(a, present.describe(criteria, values, a.shown_order)) for a, values in
            history.pop("rows")]
    return render(request, "labeling/history.html", {
        "access": access, "project": access.project, "session": session, "nav": "labelling",
        "rows": rows, **history,
    })


@login_required
@require_http_methods(["GET", "POST"])
def label_edit(request: HttpRequest, slug: str, session_id: int, item_id: int) -> HttpResponse:
    session, access = get_session_for_user(request.user, slug, session_id, need=Need.MEMBER,
                                           annotator=True)
    assignment = (
        Assignment.objects.select_related("session_item__item")
        .filter(session=session, user=request.user, session_item__item_id=item_id,
                status=AssignmentStatus.DONE).first()
    )
    if assignment is None:
        raise Http404("You have no labels for this item in this session")
    criteria = session_criteria(session)
    errors: dict = {}
    if request.method == "POST":
        values, comment = present.read_answers(request.POST, criteria)
        try:
            services.label_edit(session=session, user=request.user, item_id=item_id,
                                values=values, comment=comment, sides=True)
        except services.SessionClosed as exc:
            errors["session"] = " ".join(exc.messages)
        except ValidationError as exc:
            errors = {k: " ".join(v) for k, v in exc.message_dict.items()}
        else:
            messages.success(request, "Labels changed.")
            return redirect("label_history", slug=slug, session_id=session.pk)
        selected, comment = values, comment
    else:
        stored = own_labels(session, request.user, [item_id]).get(item_id, {})
        selected = present.to_screen_terms(criteria, stored, assignment.shown_order)
        comment = assignment.comment
    return render(request, "labeling/label_edit.html", {
        "access": access, "project": access.project, "session": session, "nav": "labelling",
        "assignment": assignment, "comment": comment, "errors": errors,
        "shown": present.present_item(assignment.session_item.item,
                                      pairwise=session.is_pairwise,
                                      shown_order=assignment.shown_order),
        "criteria": present.criteria_views(criteria, selected=selected, errors=errors),
    }, status=422 if errors else 200)
