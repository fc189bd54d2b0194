from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.projects import services
from apps.projects.access import Need, get_project_for_user
from apps.projects.forms import (
    MemberAddForm,
    MemberRoleForm,
    ProjectForm,
    ProjectSettingsForm,
    SignupForm,
    TokenForm,
)
from apps.projects.models import ApiToken, Membership


def _apply_errors(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if not settings.ALLOW_SIGNUP:
        raise Http404("Sign-up is closed on this server")
    if request.user.is_authenticated:
        return redirect("project_list")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.username}. Create your first project.")
        return redirect("project_create")
    return render(request, "registration/signup.html", {"form": form})


@login_required
@require_http_methods(["GET"])
def project_list(request: HttpRequest) -> HttpResponse:
    memberships = (
        Membership.objects.filter(user=request.user)
        .select_related("project")
        .order_by("project__name")
    )
    return render(request, "projects/project_list.html", {"memberships": memberships})


@login_required
@require_http_methods(["GET", "POST"])
def project_create(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = services.project_create(user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Project '{project.name}' created.")
            return redirect("project_home", slug=project.slug)
    return render(request, "projects/project_form.html", {"form": form})


@login_required
@require_http_methods(["GET"])
def project_home(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.MEMBER)
    project = access.project
    context = {"access": access, "project": project}
    if access.can_read:
        # Lazy imports keep projects below the apps that stand on it (DESIGN.md).
        from apps.datasets.models import Dataset
        from apps.rubrics.models import Rubric

        context["rubrics"] = Rubric.objects.filter(project=project).order_by("name")
        context["datasets"] = Dataset.objects.filter(project=project).order_by("name")
    return render(request, "projects/project_home.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def project_settings(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(
        request.user, slug, need=Need.OWN if request.method == "POST" else Need.READ
    )
    form = ProjectSettingsForm(request.POST or None, instance=access.project)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Settings saved.")
        return redirect("project_settings", slug=slug)
    return render(
        request, "projects/project_settings.html",
        {"access": access, "project": access.project, "form": form},
    )


def _members_context(access, add_form=None) -> dict:
    members = Membership.objects.filter(project=access.project).select_related("user")
    return {
        "access": access,
        "project": access.project,
        "members": members,
        "add_form": add_form or MemberAddForm(),
        "roles": MemberRoleForm.base_fields["role"].choices,
    }


@login_required
@require_http_methods(["GET", "POST"])
def member_list(request: HttpRequest, slug: str) -> HttpResponse:
    if request.method == "GET":
        access = get_project_for_user(request.user, slug, need=Need.READ)
        return render(request, "projects/members.html", _members_context(access))
    access = get_project_for_user(request.user, slug, need=Need.OWN)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            membership = services.member_add(
                project=access.project,
                identifier=form.cleaned_data["user"],
                role=form.cleaned_data["role"],
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(
                request, f"{membership.user.username} added as {membership.get_role_display()}."
            )
            if request.htmx:
                return render(request, "projects/members.html#member_table",
                              _members_context(access))
            return redirect("member_list", slug=slug)
    template = "projects/members.html#add_member" if request.htmx else "projects/members.html"
    return render(request, template, _members_context(access, form), status=422)


def _membership_or_404(access, membership_id: int) -> Membership:
    membership = Membership.objects.filter(project=access.project, pk=membership_id).first()
    if membership is None:
        raise Http404("No such member")
    return membership


@login_required
@require_POST
def member_role(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.OWN)
    _membership_or_404(access, membership_id)
    form = MemberRoleForm(request.POST)
    status = 200
    if not form.is_valid():
        messages.error(request, "Choose a role.")
        status = 422
    else:
        try:
            services.member_set_role(
                project=access.project, membership_id=membership_id, role=form.cleaned_data["role"]
            )
            messages.success(request, "Role changed.")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            status = 422
    if request.htmx:
        return render(request, "projects/members.html#member_table", _members_context(access),
                      status=status)
    return redirect("member_list", slug=slug)


@login_required
@require_POST
def member_remove(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.OWN)
    _membership_or_404(access, membership_id)
    status = 200
    try:
        services.member_remove(project=access.project, membership_id=membership_id)
        messages.success(request, "Member removed.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        status = 422
    if request.htmx:
        return render(request, "projects/members.html#member_table", _members_context(access),
                      status=status)
    return redirect("member_list", slug=slug)


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest, slug: str) -> HttpResponse:
    # Any member may hold tokens; what a token can do is what its owner's role allows.
    access = get_project_for_user(request.user, slug, need=Need.MEMBER)
    form = TokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        _, new_token = services.token_create(
            user=request.user, project=access.project, name=form.cleaned_data["name"]
        )
        form = TokenForm()
    tokens = ApiToken.objects.filter(user=request.user, project=access.project)
    return render(
        request, "projects/tokens.html",
        {"access": access, "project": access.project, "form": form, "tokens": tokens,
         "new_token": new_token},
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, slug: str, token_id: int) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.MEMBER)
    try:
        services.token_revoke(user=request.user, project=access.project, token_id=token_id)
    except ApiToken.DoesNotExist:
        raise Http404("No such token") from None
    messages.success(request, "Token revoked.")
    return redirect("token_list", slug=slug)


