"""Start-up guards shared by every entry point (manage.py, gunicorn's wsgi, the Celery app).

A deployment with a bad environment value must stop with one line that names the variable, not
with a Django traceback in which the name is buried forty lines down. The settings modules raise
ImproperlyConfigured (config/env.py's readers); here it becomes that line and exit status 2.
"""

from __future__ import annotations

import sys

from django.core.exceptions import ImproperlyConfigured


def _fail(reason: str) -> None:
    sys.stderr.write(f"RubricLab cannot start: {reason}\n")
    sys.stderr.flush()
    raise SystemExit(2)


def load_settings_or_exit() -> None:
    """Import the settings module now, turning a configuration error into one line."""
    from django.conf import settings

    try:
        settings.INSTALLED_APPS  # noqa: B018 - the first attribute read imports the module
    except ImproperlyConfigured as exc:
        _fail(str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)


def refuse_without_static_manifest() -> None:
    """With manifest storage (production), every page renders {% static %} through the manifest
    that `collectstatic` writes: without it each page is a 500. Say so once, at start-up."""
    from django.conf import settings

    backend = settings.STORAGES.get("staticfiles", {}).get("BACKEND", "")
    if "Manifest" not in backend:
        return
    from pathlib import Path

    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    if not manifest.is_file():
        _fail(f"static files are not collected ({manifest} is missing): run "
              "`python manage.py collectstatic --noinput` with the same settings first")
