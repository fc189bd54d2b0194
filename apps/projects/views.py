from __future__ import annotations

import copy

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget

from apps.projects import services
from apps.projects.access import CANNOT_CREATE, Need, can_create_projects, get_project_for_user
from apps.projects.forms import (
    AcceptInvitationForm,
    InviteForm,
    MemberAddForm,
    MemberRoleForm,
    ProjectForm,
    ProjectSettingsForm,
    SignupForm,
    TokenForm,
)
from apps.projects.invitations import (
    invitation_accept,
    invitation_create,
    invitation_for_token,
    invitation_revoke,
    invitation_send,
)
from apps.projects.models import ApiToken, Invitation, Membership, Role


def _apply_errors(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


class SignInView(LoginView):
    """Django's login view; the sign-up link follows ALLOW_SIGNUP at request time."""

    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["allow_signup"] = settings.ALLOW_SIGNUP
        return context


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
        if can_create_projects(user):
            messages.success(request, f"Welcome, {user.username}. Create your first project.")
            return redirect("project_create")
        messages.success(request, f"Welcome, {user.username}. A project's owner invites you "
                                  "to their project; projects are not created by new accounts "
                                  "on this server.")
        return redirect("project_list")
    status = 422 if request.method == "POST" else 200
    return render(request, "registration/signup.html", {"form": form}, status=status)


@login_required
@require_http_methods(["GET"])
def project_list(request: HttpRequest) -> HttpResponse:
    memberships = list(
        Membership.objects.filter(user=request.user)
        .select_related("project")
        .order_by("project__name")
    )
    # Labelling work first: a labeller who signs in lands on their sessions, with counts.
    from apps.labeling.selectors import open_sessions_of, sessions_progress

    work = sessions_progress(open_sessions_of(request.user), only_user=request.user)
    only_labels = bool(memberships) and all(m.role == Role.LABELLER for m in memberships)
    can_create = can_create_projects(request.user, memberships=memberships)
    return render(request, "projects/project_list.html",
                  {"memberships": memberships, "work": work, "only_labels": only_labels,
                   "can_create": can_create})


@login_required
@require_http_methods(["GET", "POST"])
def project_create(request: HttpRequest) -> HttpResponse:
    if not can_create_projects(request.user):
        raise PermissionDenied(CANNOT_CREATE)
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = services.project_create(user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Project '{project.name}' created.")
            return redirect("project_home", slug=project.slug)
    status = 422 if request.method == "POST" else 200
    return render(request, "projects/project_form.html", {"form": form}, status=status)


@login_required
@require_http_methods(["GET"])
def project_home(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.MEMBER)
    project = access.project
    context = {"access": access, "project": project, "nav": "home"}
    if access.can_read:
        # Lazy imports keep projects below the apps that stand on it (DESIGN.md).
        from apps.datasets.models import Dataset
        from apps.rubrics.models import Rubric

        context["rubrics"] = Rubric.objects.filter(project=project).order_by("name")
        context["datasets"] = Dataset.objects.filter(project=project).order_by("name")
        from apps.calibration.overview import loop_state
        from apps.exports.models import Export

        latest_exports = {}
        for export in Export.objects.filter(project=project).only(
                "id", "run_id", "rubric_version_id", "judge_name", "calibrated", "created_at"):
            latest_exports.setdefault(export.rubric_version_id, export)  # newest first
        context["loop"] = loop_state(project, user=request.user, exports=latest_exports)
    from apps.labeling.selectors import assigned_sessions

    # Every member's own labelling work: the open sessions they are assigned to.
    context["label_sessions"] = assigned_sessions(project, request.user)
    return render(request, "projects/project_home.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def project_settings(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(
        request.user, slug, need=Need.OWN if request.method == "POST" else Need.READ
    )
    # A copy: validating a ModelForm writes the posted values into its instance, and a
    # rejected name must not show up in the page's navigation.
    form = ProjectSettingsForm(request.POST or None, instance=copy.copy(access.project))
    if request.method == "POST" and form.is_valid():
        try:
            services.project_update_settings(project=access.project, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Settings saved.")
            return redirect("project_settings", slug=slug)
    return render(
        request, "projects/project_settings.html",
        {"access": access, "project": access.project, "form": form, "nav": "settings"},
        status=422 if request.method == "POST" else 200,
    )


def _members_context(access, add_form=None, invite_form=None) -> dict:
    members = Membership.objects.filter(project=access.project).select_related("user")
    pending = []
    if access.is_owner:
        pending = list(Invitation.objects.filter(
            project=access.project, accepted_at__isnull=True, expires_at__gt=timezone.now()))
    return {
        "access": access,
        "project": access.project,
        "members": members,
        "invitations": pending,
        "invite_form": invite_form or InviteForm(),
        "invitation_days": settings.INVITATION_TTL_DAYS,
        "add_form": add_form or MemberAddForm(),
        "roles": MemberRoleForm.base_fields["role"].choices,
        "nav": "members",
    }


def _member_table(request: HttpRequest, access, *, status: int = 200) -> HttpResponse:
    return render(request, "projects/members.html#member_table", _members_context(access),
                  status=status)


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
            if not request.htmx:
                return redirect("member_list", slug=slug)
            # The table takes the new row; an empty form replaces the one just sent.
            context = _members_context(access)
            html = render_to_string("projects/members.html#member_table", context, request)
            html += render_to_string("projects/members.html#add_member",
                                     context | {"add_oob": True}, request)
            return HttpResponse(html)
    if not request.htmx:
        return render(request, "projects/members.html", _members_context(access, form),
                      status=422)
    # The form posts with the table as its target; its errors belong in the form itself.
    response = render(request, "projects/members.html#add_member",
                      _members_context(access, form), status=422)
    return reswap(retarget(response, "#add-member"), "outerHTML")


def _membership_or_404(access, membership_id: int) -> Membership:
    membership = Membership.objects.filter(project=access.project, pk=membership_id).first()
    if membership is None:
        raise Http404("No such member")
    return membership


def _leave_page(request: HttpRequest, url: str) -> HttpResponse:
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


@login_required
@require_POST
def member_role(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.OWN)
    membership = _membership_or_404(access, membership_id)
    form = MemberRoleForm(request.POST)
    status = 200
    if not form.is_valid():
        messages.error(request, "Choose a role: owner, editor or labeller.")
        status = 422
    else:
        new_role = Role(form.cleaned_data["role"])
        try:
            services.member_set_role(
                project=access.project, membership_id=membership_id, role=new_role
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            status = 422
        else:
            messages.success(
                request, f"{membership.user.username} is now {new_role.label.lower()}."
            )
            if membership.user_id == request.user.pk and new_role != Role.OWNER:
                # An owner who stepped down no longer manages members: reload what they may see.
                after = get_project_for_user(request.user, slug, need=Need.MEMBER)
                target = "member_list" if after.can_read else "project_home"
                return _leave_page(request, reverse(target, args=[slug]))
    if request.htmx:
        return _member_table(request, access, status=status)
    return redirect("member_list", slug=slug)


@login_required
@require_POST
def member_remove(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.OWN)
    membership = _membership_or_404(access, membership_id)
    status = 200
    try:
        services.member_remove(project=access.project, membership_id=membership_id)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        status = 422
    else:
        if membership.user_id == request.user.pk:
            messages.success(request, f"You left '{access.project.name}'.")
            return _leave_page(request, reverse("project_list"))
        messages.success(request, f"{membership.user.username} removed.")
    if request.htmx:
        return _member_table(request, access, status=status)
    return redirect("member_list", slug=slug)


@never_cache  # the one response that carries a raw token must not sit in any cache
@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest, slug: str) -> HttpResponse:
    # Any member may hold tokens; what a token can do is what its owner's role allows.
    access = get_project_for_user(request.user, slug, need=Need.MEMBER)
    form = TokenForm(request.POST or None)
    new_token = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                _, new_token = services.token_create(
                    user=request.user, project=access.project, name=form.cleaned_data["name"]
                )
            except ValidationError as exc:
                _apply_errors(form, exc)
                status = 422
            else:
                form = TokenForm()
        else:
            status = 422
    tokens = ApiToken.objects.filter(user=request.user, project=access.project)
    return render(
        request, "projects/tokens.html",
        {"access": access, "project": access.project, "form": form, "tokens": tokens,
         "new_token": new_token, "nav": "tokens"},
        status=status,
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




@never_cache  # the one response that carries the invitation link
@login_required
@require_POST
def member_invite(request: HttpRequest, slug: str) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.OWN)
    form = InviteForm(request.POST)
    link = None
    status = 422
    if form.is_valid():
        try:
            invitation, raw = invitation_create(
                project=access.project, email=form.cleaned_data["email"],
                role=form.cleaned_data["role"], invited_by=request.user)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            link = request.build_absolute_uri(reverse("invitation_accept", args=[raw]))
            try:
                invitation_send(invitation=invitation, link=link)
            except OSError:  # no mail server reachable: the owner still has the link
                messages.warning(request, "The e-mail could not be sent; pass the link on.")
            else:
                messages.success(request, f"Invitation sent to {invitation.email}.")
            form, status = InviteForm(), 200
    context = _members_context(access, invite_form=form) | {"invite_link": link}
    return render(request, "projects/members.html", context, status=status)


@login_required
@require_POST
def member_invitation_revoke(request: HttpRequest, slug: str, invitation_id: int) -> HttpResponse:
    access = get_project_for_user(request.user, slug, need=Need.OWN)
    try:
        invitation_revoke(project=access.project, invitation_id=invitation_id)
    except Invitation.DoesNotExist:
        raise Http404("No such invitation") from None
    messages.success(request, "Invitation revoked.")
    return redirect("member_list", slug=slug)


@never_cache
@require_http_methods(["GET", "POST"])
def invitation_accept_view(request: HttpRequest, token: str) -> HttpResponse:
    invitation = invitation_for_token(token)
    if invitation is None:
        return render(request, "registration/invitation.html", {"invitation": None},
                      status=404)
    signed_in = request.user.is_authenticated
    form = None if signed_in else AcceptInvitationForm(request.POST or None)
    if request.method == "POST" and (signed_in or form.is_valid()):
        try:
            if signed_in:
                membership = invitation_accept(raw=token, user=request.user)
            else:
                membership = invitation_accept(
                    raw=token, username=form.cleaned_data["username"],
                    password=form.cleaned_data["password1"])
                login(request, membership.user,
                      backend="django.contrib.auth.backends.ModelBackend")
        except ValidationError as exc:
            if form is not None and hasattr(exc, "error_dict"):
                _apply_errors(form, exc)
            else:
                messages.error(request, " ".join(exc.messages))
                return redirect("project_list" if signed_in else "login")
        else:
            messages.success(request, f"Welcome to {membership.project.name}.")
            return redirect("project_home", slug=membership.project.slug)
    status = 422 if request.method == "POST" else 200
    return render(request, "registration/invitation.html",
                  {"invitation": invitation, "form": form}, status=status)
