"""Request bodies are refused before they are read (issue: uploads cannot stall the server).

Django reads a POST body the first time anything touches request.POST or request.FILES, and
CsrfViewMiddleware does so for every POST before the view (and its login check) runs: a 1 GB
anonymous upload used to be read, and spooled to disk, in full before "please sign in".
`UploadGuardMiddleware` runs before any of that, on the headers only:

1. The routes that take dataset files (LARGE_UPLOAD_ROUTES) answer a request without a signed-in
   user or a live API token at once: the login redirect (pages) or 401 (API).
2. A Content-Length over the route's limit is a 413 with a plain sentence: DATASET_MAX_UPLOAD_MB
   (plus room for the form's other fields) on those routes, REQUEST_MAX_BODY_MB elsewhere.
3. A body that claims less than it sends, or has no length, is counted as it streams by
   `CountingUploadHandler`, which stops the upload at the limit; the response is then a 413.

A proxy in front should refuse oversized bodies first (nginx `client_max_body_size`,
docs/deployment.md), so that they never reach a Python worker at all.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve

# The view names of the routes that accept dataset files; anything else gets the small limit.
LARGE_UPLOAD_ROUTES = {"dataset_upload", "api:import_items"}
FORM_SLACK = 64 * 1024  # the form's other fields and the multipart boundaries around the file
_BODY_METHODS = {"POST", "PUT", "PATCH"}


def _limits(route: str | None) -> tuple[int, str]:
    """(bytes, the sentence's name for the limit) for a route."""
    if route in LARGE_UPLOAD_ROUTES:
        mb = settings.DATASET_MAX_UPLOAD_MB
        return mb * 1024 * 1024 + FORM_SLACK, f"{mb} MB (DATASET_MAX_UPLOAD_MB)"
    mb = settings.REQUEST_MAX_BODY_MB
    return mb * 1024 * 1024, f"{mb} MB (REQUEST_MAX_BODY_MB)"


def too_large(request: HttpRequest, what: str) -> HttpResponse:
    sentence = f"The upload is larger than this server accepts: the limit is {what}."
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": sentence}, status=413)
    return HttpResponse(sentence + "\n", status=413, content_type="text/plain; charset=utf-8")


class CountingUploadHandler(FileUploadHandler):
    """First in the handler chain: counts the file bytes that stream through and stops the
    upload at the limit, whatever Content-Length said. It stores nothing itself."""

    def __init__(self, request: HttpRequest, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.seen = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.seen += len(raw_data)
        if self.seen > self.limit:
            self.request.upload_over_limit = True
            # connection_reset: do not read the rest of the body just to throw it away.
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int):
        return None


def _has_api_token(request: HttpRequest) -> bool:
    from apps.projects.services import token_authenticate

    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, raw = header.partition(" ")
    return scheme.lower() == "bearer" and bool(raw.strip()) and (
        token_authenticate(raw.strip()) is not None)


class UploadGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in _BODY_METHODS:
            return self.get_response(request)
        try:
            route = resolve(request.path_info).view_name
        except Resolver404:
            route = None
        limit, what = _limits(route)
        if route in LARGE_UPLOAD_ROUTES and not request.user.is_authenticated:
            if route.startswith("api:"):
                if not _has_api_token(request):
                    return JsonResponse({"detail": "Unauthorized"}, status=401)
            else:
                return redirect_to_login(request.get_full_path())
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            return HttpResponse("The Content-Length header is not a number.\n", status=400,
                                content_type="text/plain; charset=utf-8")
        if length > limit:
            return too_large(request, what)
        request.upload_over_limit = False
        request.upload_handlers.insert(0, CountingUploadHandler(request, limit))
        response = self.get_response(request)
        if request.upload_over_limit:
            return too_large(request, what)
        return response
