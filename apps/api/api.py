"""The JSON API under /api/v1/ (OpenAPI schema at /api/v1/openapi.json, docs at /api/v1/docs)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from ninja import NinjaAPI, Swagger

from apps.api.auth import AUTH
from apps.api.endpoints import router
from apps.api.endpoints_exports import router as exports_router
from apps.api.endpoints_judging import router as judging_router
from apps.api.endpoints_labeling import router as labeling_router
from apps.api.endpoints_probes import router as probes_router
from apps.api.endpoints_projects import router as projects_router

api = NinjaAPI(
    title="RubricLab API",
    version="1",
    description=(
        "Scripts and pipelines: rubrics, datasets, judge runs, calibration and exports; "
        "labelling for annotators (any member's token). "
        "Authenticate with a project API token: `Authorization: Bearer rl_...`."
    ),
    auth=AUTH,
    urls_namespace="api",
    # Swagger UI comes from ninja's own static files ("ninja" is in INSTALLED_APPS), so the
    # docs work offline and under our CSP (no CDN, no inline script). Its default validator
    # badge would load an image from validator.swagger.io (blocked by the CSP, and it would
    # send our schema's address out): switched off.
    docs=Swagger(settings={"validatorUrl": None}),
)


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return api.create_response(request, {"detail": str(exc) or "Forbidden"}, status=403)


api.add_router("/", router)
api.add_router("/", judging_router)
api.add_router("/", exports_router)
api.add_router("/", labeling_router)
api.add_router("/", projects_router)
api.add_router("/", probes_router)
