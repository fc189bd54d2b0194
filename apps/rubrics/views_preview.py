"""The prompt preview: the judge's messages for one item of a dataset and one criterion."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from apps.datasets.models import Dataset, Item
from apps.projects.access import Need
from apps.rubrics import content as content_mod
from apps.rubrics import prompting
from apps.rubrics.selectors import current_draft, get_rubric_for_user, judge_spec, latest_published

PREVIEW_ITEM_CHOICES = 200  # item ids offered in the preview's list; any id can be typed


def _preview_item(dataset, ref: str) -> tuple[Item | None, str | None]:
    """The item to preview: by its id in the dataset, else the first one."""
    if dataset is None:
        return None, None
    items = Item.objects.filter(dataset=dataset)
    if not ref:
        return items.order_by("position").first(), None
    item = items.filter(external_id=ref).first()
    if item is None:
        return None, f"Dataset '{dataset.name}' has no item with the id '{ref}'."
    return item, None


@login_required
@require_http_methods(["GET", "POST"])
def rubric_preview(request: HttpRequest, slug: str, rubric_slug: str) -> HttpResponse:
    """Render the judge's messages for one item. Templates sent with the request (the text being
    typed in the editor, saved or not) are used instead of the stored ones.

    POST only carries that text; nothing is stored, so READ is enough.
    """
    rubric, access = get_rubric_for_user(request.user, slug, rubric_slug, need=Need.READ)
    data = request.POST if request.method == "POST" else request.GET
    version = current_draft(rubric) or latest_published(rubric)
    spec = judge_spec(version) if version else {"criteria": [], "description": ""}
    unsaved = "user_template" in data
    if unsaved:
        spec["system_template"] = data.get("system_template", "").replace("\r\n", "\n")
        spec["user_template"] = data.get("user_template", "").replace("\r\n", "\n")
    system_text, user_text = spec.get("system_template", ""), spec.get("user_template", "")

    datasets = list(
        Dataset.objects.filter(project=access.project, kind=rubric.mode).order_by("name")
    )
    dataset_id = data.get("dataset", "")
    dataset = next((d for d in datasets if str(d.pk) == dataset_id), None)
    dataset = dataset or (datasets[0] if datasets else None)
    item_ref = (data.get("item") or "").strip()
    item, item_error = _preview_item(dataset, item_ref)
    item_ids = (
        list(Item.objects.filter(dataset=dataset).order_by("position")
             .values_list("external_id", flat=True)[:PREVIEW_ITEM_CHOICES])
        if dataset else []
    )
    criteria = spec["criteria"]
    key = data.get("criterion")
    criterion = next((c for c in criteria if c["key"] == key), criteria[0] if criteria else None)
    swapped = rubric.is_pairwise and data.get("order") == "ba"

    errors = [f"System: {e}" for e in prompting.template_errors(system_text)]
    errors += [f"User: {e}" for e in prompting.template_errors(user_text)]
    if criterion is None:
        errors.append("Add a criterion to preview the prompt.")
    if item_error:
        errors.append(item_error)
    # Rendered, but the judge would not see what it grades: worth saying, not blocking.
    warnings = content_mod.template_coverage_errors(
        user_text, pairwise=rubric.is_pairwise, path="User"
    )
    rendered = []
    if not errors:
        fields = item.fields() if item is not None else {
            "prompt": "(example prompt)", "response": "(example response)",
            "response_a": "(example response A)", "response_b": "(example response B)",
            "reference": "",
        }
        rendered = prompting.build_messages(spec, criterion, fields, swapped=swapped)
    context = {
        "access": access, "project": access.project, "rubric": rubric, "version": version,
        "datasets": datasets, "dataset": dataset, "item": item,
        "item_ref": item_ref or (item.external_id if item else ""),
        "item_ids": item_ids, "criteria": criteria, "criterion": criterion, "swapped": swapped,
        "unsaved": unsaved, "rendered": rendered, "preview_errors": errors,
        "preview_warnings": warnings, "nav": "rubrics",
    }
    template = "rubrics/preview.html#preview" if request.htmx else "rubrics/preview.html"
    return render(request, template, context)
