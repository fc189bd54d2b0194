from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.datasets.models import Dataset, Item
from apps.projects.access import Need, get_project_for_user
from apps.rubrics import criterion_form, prompting, services, yaml_io
from apps.rubrics.content import ContentError
from apps.rubrics.diff import version_diff
from apps.rubrics.forms import (
    PromptForm,
    PublishForm,
    RubricCreateForm,
    RubricImportForm,
    RubricSettingsForm,
)
from apps.rubrics.models import Criterion, Rubric
from apps.rubrics.selectors import (
    current_draft,
    get_rubric_for_user,
    get_version,
    judge_spec,
    latest_published,
    version_content,
)


def _hx_or_redirect(request, template: str, context: dict, url: str, status: int = 200):
    if request.htmx:
        return render(request, template, context, status=status)
    return redirect(url)


@login_required
@require_GET
def rubric_list(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.READ)
    rubrics = list(Rubric.objects.filter(project=access.project).order_by("name"))
    # Two queries for every rubric's versions, not two per rubric.
    from apps.rubrics.models import RubricVersion

    versions = RubricVersion.objects.filter(rubric__in=rubrics).order_by("-number")
    latest: dict[int, object] = {}
    drafts: dict[int, object] = {}
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
    return render(request, "rubrics/rubric_create.html",
                  {"access": access, "project": access.project, "form": form, "nav": "rubrics"})


@login_required
@require_http_methods(["GET", "POST"])
def rubric_import_view(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.WRITE)
    form = RubricImportForm(request.POST or None, request.FILES or None)
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        text = form.cleaned_data["text"]
        if upload is not None:
            if upload.size > 1024 * 1024:
                problems = ["(file): a rubric file is at most 1 MB"]
            else:
                try:
                    text = upload.read().decode("utf-8-sig")
                except UnicodeDecodeError:
                    problems = ["(file): not UTF-8 text"]
        if not problems and not text.strip():
            problems = ["(yaml): choose a file or paste the YAML"]
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
                verb = "Imported" if changed else "Unchanged:"
                messages.success(
                    request, f"{verb} {rubric.slug} version {version.number} ({state})."
                )
                return redirect("rubric_detail", slug=slug, rubric_slug=rubric.slug)
    status = 422 if problems else 200
    return render(request, "rubrics/rubric_import.html",
                  {"access": access, "project": access.project, "form": form,
                   "problems": problems, "nav": "rubrics"}, status=status)


def _editor_context(request, rubric, access, **extra) -> dict:
    draft = current_draft(rubric)
    published = latest_published(rubric)
    shown = draft or published
    criteria = list(shown.criteria.order_by("position", "id")) if shown else []
    datasets = list(
        Dataset.objects.filter(project=access.project, kind=rubric.mode).order_by("name")
    )
    context = {
        "access": access,
        "project": access.project,
        "rubric": rubric,
        "draft": draft,
        "published": published,
        "version": shown,
        "criteria": criteria,
        "editable": draft is not None and access.can_write,
        "settings_form": RubricSettingsForm(initial={
            "name": rubric.name, "description": shown.description if shown else "",
            "pass_threshold": shown.pass_threshold if shown else 0.5,
        }),
        "prompt_form": PromptForm(initial={
            "system_template": shown.system_template if shown else "",
            "user_template": shown.user_template if shown else "",
        }),
        "prompt_problems": services.prompt_problems(shown) if shown else [],
        "publish_form": PublishForm(),
        "datasets": datasets,
        "variables": prompting.VARIABLES,
        "nav": "rubrics",
    }
    context.update(extra)
    return context


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
    return redirect("rubric_detail", slug=slug, rubric_slug=rubric.slug)


@login_required
@require_POST
def rubric_settings(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.WRITE)
    form = RubricSettingsForm(request.POST)
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
    messages.success(request, "Saved.")
    return _hx_or_redirect(request, "rubrics/rubric_detail.html#settings",
                           _editor_context(request, rubric, access),
                           reverse("rubric_detail", args=[slug, rubric.slug]))


def _criterion_of_draft(rubric: Rubric, criterion_id: int) -> Criterion:
    draft = current_draft(rubric)
    criterion = draft.criteria.filter(pk=criterion_id).first() if draft else None
    if criterion is None:
        raise Http404("No such criterion in the draft")
    return criterion


def _criteria_response(request, rubric, access, slug):
    return _hx_or_redirect(request, "rubrics/rubric_detail.html#criteria",
                           _editor_context(request, rubric, access),
                           reverse("rubric_detail", args=[slug, rubric.slug]))


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
    refresh = request.method == "GET" and "scale_type" in request.GET
    if request.method == "POST" or refresh:
        data = request.POST if request.method == "POST" else request.GET
        form = criterion_form.form_from_post(data, pairwise=rubric.is_pairwise)
        if request.method == "POST" and "_refresh" not in data:
            try:
                services.criterion_save(
                    rubric=rubric, raw=form.raw(), criterion_id=criterion.pk if criterion else None
                )
            except ContentError as exc:
                form.add_errors(exc.errors)
            else:
                messages.success(request, f"Criterion '{form.key}' saved.")
                return _criteria_response(request, rubric, access, slug)
    elif criterion is not None:
        form = criterion_form.form_from_criterion(criterion)
    else:
        form = criterion_form.blank_form(pairwise=rubric.is_pairwise)
    context = _editor_context(request, rubric, access, form=form, criterion=criterion)
    status = 422 if form.has_errors else 200
    template = "rubrics/criterion_form.html"
    if not request.htmx:
        return render(request, template, context, status=status)
    response = render(request, template + "#criterion_form", context, status=status)
    # The form posts into #criteria (the list it updates on success); a form coming back with
    # errors, or with its level rows refreshed, goes back into the editor slot instead.
    response["HX-Retarget"] = "#criterion-editor"
    response["HX-Reswap"] = "innerHTML"
    return response


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
        messages.warning(request, "Saved, with problems to fix before publishing.")
    else:
        messages.success(request, "Prompt saved.")
    return _hx_or_redirect(request, "rubrics/rubric_detail.html#prompt",
                           _editor_context(request, rubric, access),
                           reverse("rubric_detail", args=[slug, rubric.slug]))


@login_required
@require_http_methods(["GET", "POST"])
def rubric_preview(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    """Render the judge's messages for one item; unsaved templates from the form are used.

    POST only carries the text being typed; nothing is stored, so READ is enough.
    """
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.READ)
    data = request.POST if request.method == "POST" else request.GET
    version = current_draft(rubric) or latest_published(rubric)
    spec = judge_spec(version) if version else {"criteria": []}
    if "user_template" in data:
        spec["system_template"] = data.get("system_template", "")
        spec["user_template"] = data.get("user_template", "")
    datasets = Dataset.objects.filter(project=access.project, kind=rubric.mode).order_by("name")
    dataset = None
    dataset_id = data.get("dataset")
    if dataset_id and dataset_id.isdigit():
        dataset = datasets.filter(pk=int(dataset_id)).first()
    dataset = dataset or datasets.first()
    item = None
    item_ref = (data.get("item") or "").strip()
    if dataset is not None:
        items = Item.objects.filter(dataset=dataset)
        item = (items.filter(external_id=item_ref).first() if item_ref else None) or items.order_by(
            "position").first()
    criteria = spec["criteria"]
    key = data.get("criterion")
    criterion = next((c for c in criteria if c["key"] == key), criteria[0] if criteria else None)
    errors: list[str] = []
    rendered = []
    errors += [f"System: {e}" for e in prompting.template_errors(spec.get("system_template", ""))]
    errors += [f"User: {e}" for e in prompting.template_errors(spec.get("user_template", ""))]
    if criterion is None:
        errors.append("Add a criterion to preview the prompt.")
    if not errors and criterion is not None:
        fields = item.fields() if item is not None else {
            "prompt": "(example prompt)", "response": "(example response)",
            "response_a": "(example response A)", "response_b": "(example response B)",
            "reference": "",
        }
        rendered = prompting.build_messages(spec, criterion, fields)
    context = {
        "access": access, "project": access.project, "rubric": rubric, "datasets": datasets,
        "dataset": dataset, "item": item, "criteria": criteria, "criterion": criterion,
        "rendered": rendered, "preview_errors": errors, "nav": "rubrics",
    }
    template = "rubrics/preview.html#preview" if request.htmx else "rubrics/preview.html"
    return render(request, template, context)


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
            problems = exc.errors
        except ValidationError as exc:
            problems = exc.messages
        else:
            messages.success(request, f"Published version {version.number} "
                                      f"(hash {version.short_hash}).")
            response = redirect("rubric_detail", slug=slug, rubric_slug=rubric.slug)
            if request.htmx:
                response = HttpResponse(status=204)
                response["HX-Redirect"] = reverse("rubric_detail", args=[slug, rubric.slug])
            return response
    else:
        problems = [e for errors in form.errors.values() for e in errors]
    context = _editor_context(request, rubric, access, publish_form=form,
                              publish_problems=problems)
    template = "rubrics/rubric_detail.html" + ("#publish" if request.htmx else "")
    return render(request, template, context, status=422)


@login_required
@require_GET
def version_list(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.READ)
    versions = rubric.versions.select_related("published_by").order_by("-number")
    return render(request, "rubrics/version_list.html",
                  {"access": access, "project": access.project, "rubric": rubric,
                   "versions": versions, "nav": "rubrics"})


@login_required
@require_GET
def version_detail(request: HttpRequest, slug: str, rubric_slug: str, number: int):
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.READ)
    version = get_version(rubric, number)
    return render(request, "rubrics/version_detail.html",
                  {"access": access, "project": access.project, "rubric": rubric,
                   "version": version, "criteria": version.criteria.order_by("position", "id"),
                   "yaml": yaml_io.dump(version_content(version)), "nav": "rubrics"})


@login_required
@require_GET
def version_yaml(request: HttpRequest, slug: str, rubric_slug: str, number: int):
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.READ)
    version = get_version(rubric, number)
    response = HttpResponse(yaml_io.dump(version_content(version)),
                            content_type="application/x-yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{rubric.slug}-v{number}.yaml"'
    return response


@login_required
@require_GET
def version_compare(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.READ)
    numbers = list(rubric.versions.order_by("number").values_list("number", flat=True))
    if not numbers:
        raise Http404("No versions")

    def pick(name: str, default: int) -> int:
        value = request.GET.get(name, "")
        return int(value) if value.isdigit() and int(value) in numbers else default

    b = pick("b", numbers[-1])
    a = pick("a", numbers[-2] if len(numbers) > 1 else numbers[-1])
    old, new = get_version(rubric, a), get_version(rubric, b)
    diff = version_diff(version_content(old), version_content(new))
    return render(request, "rubrics/version_compare.html",
                  {"access": access, "project": access.project, "rubric": rubric, "old": old,
                   "new": new, "diff": diff, "numbers": numbers, "nav": "rubrics"})
