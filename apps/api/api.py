"""The JSON API under /api/v1/ (OpenAPI schema at /api/v1/openapi.json, docs at /api/v1/docs)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from ninja import NinjaAPI

from apps.api.auth import AUTH
from apps.api.endpoints import router

api = NinjaAPI(
    title="RubricLab API",
    version="1",
    description=(
        "Scripts and pipelines: rubrics, datasets, judge runs, calibration and exports. "
        "Authenticate with a project API token: `Authorization: Bearer rl_...`."
    ),
    auth=AUTH,
    urls_namespace="api",
)


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return api.create_response(request, {"detail": str(exc) or "Forbidden"}, status=403)


api.add_router("/", router)
