"""Rubric pages: list, create, import, and the editor (task, criteria, prompt, publish). The
preview is in views_preview.py, the version history in views_versions.py.

Every view loads through get_rubric_for_user / get_project_for_user; every write goes through
apps.rubrics.services. Each page works as plain GET/POST; htmx requests get the partial they
update.
"""

from __future__ import annotations

import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget, trigger_client_event

from apps.projects.access import Need, get_project_for_user
from apps.rubrics import criterion_form, prompting, services, yaml_io
from apps.rubrics.content import ContentError
from apps.rubrics.forms import (
    PromptForm,
    PublishForm,
    RubricCreateForm,
    RubricImportForm,
    RubricSettingsForm,
)
from apps.rubrics.models import Criterion, Rubric, RubricVersion
from apps.rubrics.selectors import current_draft, get_rubric_for_user, latest_published

IMPORT_MAX_BYTES = 1024 * 1024


def _detail_url(project_slug: str, rubric: Rubric) -> str:
    return reverse("rubric_detail", args=[project_slug, rubric.slug])


def _hx_or_redirect(request, template: str, context: dict, url: str, status: int = 200):
    if request.htmx:
        return render(request, template, context, status=status)
    return redirect(url)


def _leave_page(request, url: str) -> HttpResponse:
    """Go to `url`: a redirect, or for htmx a client-side redirect (a 302 would be followed
    by the XHR and its page swapped into the target)."""
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


@login_required
@require_GET
def rubric_list(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.READ)
    rubrics = list(Rubric.objects.filter(project=access.project).order_by("name"))
    # One query for every rubric's versions, not two per rubric.
    versions = RubricVersion.objects.filter(rubric__in=rubrics).order_by("-number")
    latest: dict[int, RubricVersion] = {}
    drafts: dict[int, RubricVersion] = {}
    for version in versions:
        if version.is_published:
            latest.setdefault(version.rubric_id, version)
        else:
            drafts[version.rubric_id] = version
    rows = [(r, latest.get(r.pk), drafts.get(r.pk)) for r in rubrics]
    return render(request, "rubrics/rubric_list.html",
                  {"access": access, "project": access.project, "rows": rows, "nav": "rubrics"})


@login_required
@require_http_methods(["GET", "POST"])
def rubric_create(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.WRITE)
    form = RubricCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            rubric = services.rubric_create(project=access.project, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Rubric '{rubric.name}' created. Add its criteria.")
            return redirect("rubric_detail", slug=slug, rubric_slug=rubric.slug)
    status = 422 if form.errors else 200
    return render(request, "rubrics/rubric_create.html",
                  {"access": access, "project": access.project, "form": form, "nav": "rubrics"},
                  status=status)


def _import_text(form: RubricImportForm) -> tuple[str, list[str]]:
    """The YAML text from the upload (preferred) or the text box, or the problems with it."""
    upload = form.cleaned_data["file"]
    if upload is None:
        text = form.cleaned_data["text"]
    elif upload.size > IMPORT_MAX_BYTES:
        return "", ["(file): a rubric file is at most 1 MB"]
    else:
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            return "", ["(file): not UTF-8 text"]
    if not text.strip():
        return "", ["(yaml): choose a file or paste the YAML"]
    return text, []


@login_required
@require_http_methods(["GET", "POST"])
def rubric_import_view(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.WRITE)
    form = RubricImportForm(request.POST or None, request.FILES or None)
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        text, problems = _import_text(form)
        if not problems:
            try:
                content = yaml_io.parse(text)
                rubric, version, changed = services.rubric_import(
                    project=access.project, content=content, user=request.user,
                    publish=form.cleaned_data["publish"], note=form.cleaned_data["note"],
                )
            except ContentError as exc:
                problems = exc.errors
            except ValidationError as exc:
                problems = exc.messages
            else:
                state = "published" if version.is_published else "draft"
                if changed:
                    text = f"Imported {rubric.slug} as version {version.number} ({state})."
                else:
                    text = (f"Nothing to import: {rubric.slug} version {version.number} "
                            f"({state}) already says this.")
                messages.success(request, text)
                return redirect("rubric_detail", slug=slug, rubric_slug=rubric.slug)
    status = 422 if problems or form.errors else 200
    return render(request, "rubrics/rubric_import.html",
                  {"access": access, "project": access.project, "form": form,
                   "problems": problems, "nav": "rubrics"}, status=status)


def _settings_form(rubric: Rubric, shown, published, data=None) -> RubricSettingsForm:
    initial = {
        "name": rubric.name, "slug": rubric.slug, "mode": rubric.mode,
        "description": shown.description if shown else "",
        "pass_threshold": shown.pass_threshold if shown else 0.5,
    }
    return RubricSettingsForm(data, initial=initial, mode_fixed=published is not None)


def _editor_context(request, rubric, access, **extra) -> dict:
    draft = current_draft(rubric)
    published = latest_published(rubric)
    shown = draft or published
    criteria = list(shown.criteria.order_by("position", "id")) if shown else []
    context = {
        "access": access,
        "project": access.project,
        "rubric": rubric,
        "draft": draft,
        "published": published,
        "version": shown,
        "criteria": criteria,
        # Only a draft is edited; a published version is shown read-only with a way to start one.
        "editable": draft is not None and access.can_write,
        "settings_form": _settings_form(rubric, shown, published),
        "prompt_form": PromptForm(initial={
            "system_template": shown.system_template if shown else "",
            "user_template": shown.user_template if shown else "",
        }),
        "prompt_problems": services.prompt_problems(shown) if shown else [],
        "publish_form": PublishForm(),
        "variables": prompting.VARIABLES,
        "notes": list(rubric.notes.filter(resolved=False)[:50]),
        "nav": "rubrics",
    }
    context.update(extra)
    return context


@login_required
@require_POST
def rubric_note_resolve(request: HttpRequest, slug: str, rubric_slug: str, note_id: int):
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.WRITE)
    services.rubric_note_resolve(rubric=rubric, note_id=note_id)
    messages.success(request, "Note marked as done.")
    return redirect(_detail_url(slug, rubric))


@login_required
@require_GET
def rubric_detail(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.READ)
    return render(request, "rubrics/rubric_detail.html", _editor_context(request, rubric, access))


@login_required
@require_POST
def rubric_start_draft(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.WRITE)
    draft = services.rubric_draft(rubric=rubric)
    messages.success(request, f"Editing draft version {draft.number}.")
    return _leave_page(request, _detail_url(slug, rubric))


@login_required
@require_POST
def rubric_settings(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.WRITE)
    before = (rubric.name, rubric.slug, rubric.mode)
    form = _settings_form(rubric, None, latest_published(rubric), data=request.POST)
    if form.is_valid():
        try:
            services.rubric_update(rubric=rubric, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
    if form.errors:
        context = _editor_context(request, rubric, access, settings_form=form)
        template = "rubrics/rubric_detail.html" + ("#settings" if request.htmx else "")
        return render(request, template, context, status=422)
    if before[2] != rubric.mode:
        messages.success(request, f"Saved. The rubric is now {rubric.get_mode_display().lower()}"
                                  "; its criteria and prompt start from that mode's defaults.")
    else:
        messages.success(request, "Saved.")
    if (rubric.name, rubric.slug, rubric.mode) != before:
        # The heading, every address on the page, or the criteria changed: load it afresh.
        return _leave_page(request, _detail_url(slug, rubric))
    response = _hx_or_redirect(request, "rubrics/rubric_detail.html#settings",
                               _editor_context(request, rubric, access),
                               _detail_url(slug, rubric))
    return trigger_client_event(response, RUBRIC_CHANGED) if request.htmx else response


def _criterion_of_draft(rubric: Rubric, criterion_id: int) -> Criterion:
    draft = current_draft(rubric)
    criterion = draft.criteria.filter(pk=criterion_id).first() if draft else None
    if criterion is None:
        raise Http404("No such criterion in the draft")
    return criterion


# Sent with every change to what the judge sees; the preview listens and renders afresh.
RUBRIC_CHANGED = "rubric-changed"


def _criteria_response(request, rubric, access, slug):
    response = _hx_or_redirect(request, "rubrics/rubric_detail.html#criteria",
                               _editor_context(request, rubric, access),
                               _detail_url(slug, rubric))
    return trigger_client_event(response, RUBRIC_CHANGED) if request.htmx else response


@login_required
@require_http_methods(["GET", "POST"])
def criterion_new(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.WRITE)
    return _criterion_form_view(request, rubric, access, slug, criterion=None)


@login_required
@require_http_methods(["GET", "POST"])
def criterion_edit(request: HttpRequest, slug: str, rubric_slug: str, criterion_id: int):
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.WRITE)
    criterion = _criterion_of_draft(rubric, criterion_id)
    return _criterion_form_view(request, rubric, access, slug, criterion=criterion)


def _criterion_form_view(request, rubric, access, slug, *, criterion):
    """GET: the empty or filled form. POST with `_refresh`: the form re-drawn for another scale
    or number of levels, nothing saved. POST: save, or the form with its errors.

    The form lives either in the editor slot of the rubric page (`shown_in=editor`, posting
    with htmx and swapping the criteria list on success) or on a page of its own (plain POST,
    redirect on success), so a link opened in a new tab works too.
    """
    if request.method == "GET":
        embedded = bool(request.htmx)
        if criterion is not None:
            form = criterion_form.form_from_criterion(criterion)
        else:
            form = criterion_form.blank_form(pairwise=rubric.is_pairwise)
    else:
        embedded = request.POST.get("shown_in") == "editor"
        form = criterion_form.form_from_post(request.POST, pairwise=rubric.is_pairwise)
        if "_refresh" not in request.POST:
            try:
                services.criterion_save(
                    rubric=rubric, raw=form.raw(), criterion_id=criterion.pk if criterion else None
                )
            except ContentError as exc:
                form.add_errors(exc.errors)
            else:
                messages.success(request, f"Criterion '{form.key}' saved.")
                return _criteria_response(request, rubric, access, slug)
    context = _editor_context(request, rubric, access, form=form, criterion=criterion,
                              embedded=embedded)
    status = 422 if form.has_errors else 200
    template = "rubrics/criterion_form.html"
    if not request.htmx:
        return render(request, template, context, status=status)
    response = render(request, template + "#criterion_form", context, status=status)
    # An embedded form posts into #criteria (the list it replaces on success); a form coming
    # back with errors, or with its level rows re-drawn, goes back into the editor slot.
    return reswap(retarget(response, "#criterion-editor"), "innerHTML")


@login_required
@require_POST
def criterion_delete(request: HttpRequest, slug: str, rubric_slug: str, criterion_id: int):
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.WRITE)
    criterion = _criterion_of_draft(rubric, criterion_id)
    services.criterion_remove(rubric=rubric, criterion_id=criterion.pk)
    messages.success(request, f"Criterion '{criterion.key}' removed.")
    return _criteria_response(request, rubric, access, slug)


@login_required
@require_POST
def criterion_move(request: HttpRequest, slug: str, rubric_slug: str, criterion_id: int):
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.WRITE)
    criterion = _criterion_of_draft(rubric, criterion_id)
    offset = -1 if request.POST.get("direction") == "up" else 1
    services.criterion_move(rubric=rubric, criterion_id=criterion.pk, offset=offset)
    return _criteria_response(request, rubric, access, slug)


@login_required
@require_POST
def rubric_prompt(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.WRITE)
    form = PromptForm(request.POST)
    form.is_valid()  # both fields are optional text: always valid
    problems = services.rubric_update_prompt(
        rubric=rubric,
        system_template=form.cleaned_data.get("system_template", ""),
        user_template=form.cleaned_data.get("user_template", ""),
    )
    if problems:
        messages.warning(request, "Prompt saved, with problems to fix before publishing.")
    else:
        messages.success(request, "Prompt saved.")
    return _hx_or_redirect(request, "rubrics/rubric_detail.html#prompt",
                           _editor_context(request, rubric, access), _detail_url(slug, rubric))


_CRITERION_PATH_RE = re.compile(r"^criteria\[(\d+)\]\.?")


def _name_criteria(problems: list[str], version: RubricVersion | None) -> list[str]:
    """'criteria[2].scale...' as "criterion 'tone': scale...": the editor shows keys, not
    positions."""
    keys = list(version.criteria.order_by("position", "id").values_list("key", flat=True)) \
        if version else []

    def name(match: re.Match) -> str:
        index = int(match.group(1))
        return f"criterion '{keys[index]}': " if index < len(keys) else match.group(0)

    return [_CRITERION_PATH_RE.sub(name, p) for p in problems]


@login_required
@require_POST
def rubric_publish(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.WRITE)
    form = PublishForm(request.POST)
    problems: list[str] = []
    if form.is_valid():
        try:
            version = services.rubric_publish(
                rubric=rubric, user=request.user, note=form.cleaned_data["note"]
            )
        except ContentError as exc:
            problems = _name_criteria(exc.errors, current_draft(rubric))
        except ValidationError as exc:
            problems = exc.messages
        else:
            messages.success(request, f"Published version {version.number} "
                                      f"(hash {version.short_hash}).")
            return _leave_page(request, _detail_url(slug, rubric))
    context = _editor_context(request, rubric, access, publish_form=form,
                              publish_problems=problems)
    template = "rubrics/rubric_detail.html" + ("#publish" if request.htmx else "")
    return render(request, template, context, status=422)
