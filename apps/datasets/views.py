from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.datasets.models import Dataset
from apps.datasets.selectors import get_dataset_for_user, get_item_for_user, item_page
from apps.projects.access import Need, get_project_for_user


@login_required
@require_GET
def dataset_list(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.READ)
    datasets = Dataset.objects.filter(project=access.project).order_by("name")
    return render(request, "datasets/dataset_list.html",
                  {"access": access, "project": access.project, "datasets": datasets,
                   "nav": "datasets"})


@login_required
@require_GET
def dataset_detail(request: HttpRequest, slug: str, dataset_id: int) -> HttpResponse:
    dataset, access = get_dataset_for_user(request.user, slug, dataset_id, need=Need.READ)
    query = request.GET.get("q", "")[:200]
    page_arg = request.GET.get("page", "1")
    page_number = int(page_arg) if page_arg.isdigit() and int(page_arg) < 10**7 else 1
    page = item_page(dataset, query=query, page=page_number,
                     include_sensitive=access.can_read)
    context = {"access": access, "project": access.project, "dataset": dataset, "page": page,
               "query": query, "nav": "datasets"}
    template = "datasets/dataset_detail.html"
    if request.htmx and request.htmx.target == "item-table":
        template += "#item_table"
    return render(request, template, context)


@login_required
@require_GET
def item_detail(request: HttpRequest, slug: str, dataset_id: int, item_id: int) -> HttpResponse:
    item, access = get_item_for_user(request.user, slug, dataset_id, item_id, need=Need.READ)
    dataset = item.dataset
    neighbours = {
        "previous": dataset.items.filter(position__lt=item.position).order_by("-position")
        .values_list("pk", flat=True).first(),
        "next": dataset.items.filter(position__gt=item.position).order_by("position")
        .values_list("pk", flat=True).first(),
    }
    return render(request, "datasets/item_detail.html",
                  {"access": access, "project": access.project, "dataset": dataset, "item": item,
                   "neighbours": neighbours, "nav": "datasets"})
