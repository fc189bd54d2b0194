"""API authentication: a project token (Authorization: Bearer ...) or the browser session."""

from __future__ import annotations

from django.http import Http404
from ninja.security import HttpBearer, SessionAuth

from apps.projects.access import Need, ProjectAccess, get_project_for_user
from apps.projects.services import token_authenticate


class TokenAuth(HttpBearer):
    def authenticate(self, request, token: str):
        api_token = token_authenticate(token)
        if api_token is None:
            return None
        request.api_token = api_token
        request.user = api_token.user
        return api_token


def check_token_scope(request, slug: str) -> None:
    """A token opens its own project only: any other slug is 404, as for an outsider."""
    token = getattr(request, "api_token", None)
    if token is not None and token.project.slug != slug:
        raise Http404("No such project")


def project_access(request, slug: str, *, need: Need) -> ProjectAccess:
    """The API's project loader: the token's scope, then the same membership and role rules
    as the pages (apps/projects/access.py)."""
    check_token_scope(request, slug)
    return get_project_for_user(request.user, slug, need=need)


AUTH = [TokenAuth(), SessionAuth()]
