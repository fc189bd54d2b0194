"""Typed readers for settings that come from the environment.

Each reader fails loudly (ImproperlyConfigured naming the variable) on a value it cannot parse,
so a typo in a deployment is a start-up error rather than a silently ignored default.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ImproperlyConfigured(f"{name} must be set")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = float(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}")
    return number


def env_optional_float(name: str, *, minimum: float | None = None) -> float | None:
    """A number, or None when the variable is unset or empty (an optional ceiling)."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return env_float(name, 0.0, minimum=minimum)


def env_list(name: str, default: list[str]) -> list[str]:
    """Comma-separated values. Blanks around commas are fine; a blank inside a value is not:
    "a.org b.org" is almost always a forgotten comma, and would silently match nothing."""
    value = os.environ.get(name)
    if value is None:
        return default
    parts = [part.strip() for part in value.split(",") if part.strip()]
    for part in parts:
        if any(ch.isspace() for ch in part):
            raise ImproperlyConfigured(
                f"{name}={value!r}: {part!r} contains a blank (separate values with commas)"
            )
    return parts


def parse_database_url(url: str, *, base_dir: Path) -> dict:
    """Turn `sqlite:///path` or `postgres://user:pass@host:port/name` into a DATABASES entry."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        # sqlite:///relative/path and sqlite:////absolute/path, as dj-database-url reads them.
        # sqlite://name/... (two slashes) would put the first folder in the host part and
        # quietly open another file, so it is refused.
        if parsed.netloc or not url.startswith("sqlite:///"):
            raise ImproperlyConfigured(
                f"DATABASE_URL={url!r}: use sqlite:///relative/path or sqlite:////absolute/path"
            )
        path = unquote(url[len("sqlite:///") :].split("?", 1)[0])
        if not path:
            raise ImproperlyConfigured("DATABASE_URL sqlite:/// needs a file path")
        db_path = Path(path) if Path(path).is_absolute() else base_dir / path
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(db_path),
            # WAL plus a busy timeout lets the web server and the embedded Celery worker
            # write to one file without "database is locked" errors under normal load.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    if parsed.scheme in {"postgres", "postgresql", "pgsql"}:
        name = unquote(parsed.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured("DATABASE_URL must name a database (postgres://.../NAME)")
        options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
        try:
            conn_max_age = int(options.pop("conn_max_age", "60"))
            port = parsed.port  # raises ValueError on a port that is not a number
        except ValueError as exc:
            raise ImproperlyConfigured(f"DATABASE_URL does not parse: {exc}") from None
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(port or ""),
            "CONN_MAX_AGE": conn_max_age,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL scheme {parsed.scheme!r} is not supported (use sqlite:/// or postgres://)"
    )
