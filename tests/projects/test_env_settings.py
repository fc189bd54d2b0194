"""Settings come from the environment through typed readers that fail loudly (STYLE.md 8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_str, parse_database_url

ROOT = Path(__file__).resolve().parents[2]
BASE = Path("/srv/rubriclab")
LONG_KEY = "k3y-" + "x9Qz" * 20  # 84 characters, many distinct: what check --deploy wants


def _run(args: list[str], **env_overrides: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    for key, value in env_overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


# -- readers ----------------------------------------------------------------------------------

def test_unset_variables_fall_back_to_their_defaults(monkeypatch):
    for name in ("RL_T_BOOL", "RL_T_INT", "RL_T_LIST", "RL_T_STR", "RL_T_FLOAT"):
        monkeypatch.delenv(name, raising=False)
    assert env_bool("RL_T_BOOL", True) is True
    assert env_int("RL_T_INT", 7) == 7
    assert env_float("RL_T_FLOAT", 0.5) == 0.5
    assert env_list("RL_T_LIST", ["a"]) == ["a"]
    assert env_str("RL_T_STR", "d") == "d"


def test_a_required_string_that_is_missing_names_the_variable(monkeypatch):
    monkeypatch.delenv("RL_T_STR", raising=False)
    with pytest.raises(ImproperlyConfigured, match="RL_T_STR"):
        env_str("RL_T_STR")


@pytest.mark.parametrize("raw,expected", [
    ("1", True), ("true", True), ("Yes", True), (" on ", True),
    ("0", False), ("false", False), ("NO", False), ("off", False),
])
def test_booleans_read_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("RL_T_BOOL", raw)
    assert env_bool("RL_T_BOOL", not expected) is expected


@pytest.mark.parametrize("raw", ["maybe", "2", "yes please", "tru"])
def test_a_bad_boolean_raises_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("RL_T_BOOL", raw)
    with pytest.raises(ImproperlyConfigured, match="RL_T_BOOL"):
        env_bool("RL_T_BOOL", False)


@pytest.mark.parametrize("raw", ["ten", "1.5", "", "2e3", "200MB"])
def test_a_bad_integer_raises_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("RL_T_INT", raw)
    with pytest.raises(ImproperlyConfigured, match="RL_T_INT"):
        env_int("RL_T_INT", 1)


def test_an_integer_below_its_minimum_raises_naming_the_variable(monkeypatch):
    monkeypatch.setenv("RL_T_INT", "0")
    with pytest.raises(ImproperlyConfigured, match="RL_T_INT.*at least 1"):
        env_int("RL_T_INT", 5, minimum=1)
    monkeypatch.setenv("RL_T_INT", " 42 ")
    assert env_int("RL_T_INT", 5, minimum=1) == 42


def test_a_bad_float_raises_naming_the_variable(monkeypatch):
    monkeypatch.setenv("RL_T_FLOAT", "high")
    with pytest.raises(ImproperlyConfigured, match="RL_T_FLOAT"):
        env_float("RL_T_FLOAT", 0.4)


def test_lists_split_on_commas_and_ignore_blanks_around_them(monkeypatch):
    monkeypatch.setenv("RL_T_LIST", " a.example.org, b.example.org ,,")
    assert env_list("RL_T_LIST", []) == ["a.example.org", "b.example.org"]


def test_a_list_written_with_spaces_instead_of_commas_raises_naming_the_variable(monkeypatch):
    monkeypatch.setenv("RL_T_LIST", "https://a.example.org https://b.example.org")
    with pytest.raises(ImproperlyConfigured, match="RL_T_LIST.*commas"):
        env_list("RL_T_LIST", [])


# -- DATABASE_URL -------------------------------------------------------------------------------

def test_sqlite_relative_path_is_under_the_project_folder():
    db = parse_database_url("sqlite:///var/app.sqlite3", base_dir=BASE)
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"] == str(BASE / "var" / "app.sqlite3")
    assert db["OPTIONS"]["timeout"] == 30


def test_sqlite_absolute_path_is_kept():
    db = parse_database_url("sqlite:////tmp/data/app.sqlite3", base_dir=BASE)
    assert db["NAME"] == "/tmp/data/app.sqlite3"


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://var/app.sqlite3", "sqlite:app.db"])
def test_sqlite_without_a_usable_path_is_refused(url):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        parse_database_url(url, base_dir=BASE)


def test_postgres_url_with_user_password_port_and_query():
    db = parse_database_url(
        "postgres://rl%40ops:s3cr%2Ft@db.internal:6543/rubric_lab?sslmode=require&conn_max_age=0",
        base_dir=BASE,
    )
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"]) == ("rubric_lab", "rl@ops", "s3cr/t")
    assert (db["HOST"], db["PORT"]) == ("db.internal", "6543")
    assert db["CONN_MAX_AGE"] == 0
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_postgres_url_without_port_or_password_uses_the_defaults():
    db = parse_database_url("postgresql://postgres@127.0.0.1/rubriclab", base_dir=BASE)
    assert (db["USER"], db["PASSWORD"], db["PORT"]) == ("postgres", "", "")
    assert db["CONN_MAX_AGE"] == 60


@pytest.mark.parametrize("url", [
    "postgres://u:p@host:5432/",
    "postgres://u:p@host:port/db",
    "postgres://u:p@host/db?conn_max_age=forever",
])
def test_a_broken_postgres_url_is_refused_naming_the_variable(url):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL") as info:
        parse_database_url(url, base_dir=BASE)
    assert ":p@" not in str(info.value)  # the password is never repeated in the error


@pytest.mark.parametrize("url", ["mysql://u:p@host/db", "redis://localhost/0", ""])
def test_an_unsupported_scheme_is_refused_naming_the_variable(url):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL.*not supported"):
        parse_database_url(url, base_dir=BASE)


# -- settings modules, imported in a fresh process ----------------------------------------------

def _one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("RubricLab cannot start: ")
    return lines[0]


@pytest.mark.parametrize("entry", [
    ["manage.py", "check"],                       # every management command
    ["-c", "import config.wsgi"],                 # gunicorn config.wsgi:application
    ["-m", "celery", "-A", "config", "report"],   # celery -A config worker / beat
])
@pytest.mark.parametrize("variable,value", [
    ("DATASET_MAX_UPLOAD_MB", "lots"), ("ALLOW_SIGNUP", "maybe"),
    ("MAX_QUEUED_CALLS_LIMIT", "0"), ("GATE_MIN_KAPPA", "-1"),
    ("ALLOWED_API_BASES", "gpu-box:8000"), ("MONTHLY_COST_LIMIT_USD", "ten dollars"),
])
def test_a_bad_value_stops_start_up_with_one_line_naming_the_variable(entry, variable, value):
    line = _one_line(_run(entry, **{variable: value}))
    assert variable in line


@pytest.mark.parametrize("soft,visibility", [("3600", "3600"), ("3541", "3600")])
def test_a_time_limit_that_outlasts_the_visibility_timeout_stops_start_up(soft, visibility):
    result = _run(["manage.py", "check"], CELERY_BROKER_URL="redis://h:6379/0",
                  CELERY_TASK_SOFT_TIME_LIMIT=soft, CELERY_BROKER_VISIBILITY_TIMEOUT=visibility)
    line = _one_line(result)
    assert "CELERY_TASK_SOFT_TIME_LIMIT" in line
    assert "CELERY_BROKER_VISIBILITY_TIMEOUT" in line


def test_a_time_limit_below_the_visibility_timeout_is_accepted():
    # And the filesystem broker, which has no visibility timeout, takes any limit.
    for broker, soft in (("redis://h:6379/0", "3539"), ("filesystem://", "7200")):
        result = _run(["-c", "import config.settings.base"], CELERY_BROKER_URL=broker,
                      CELERY_TASK_SOFT_TIME_LIMIT=soft, CELERY_BROKER_VISIBILITY_TIMEOUT="3600")
        assert result.returncode == 0, (broker, result.stderr)


@pytest.mark.parametrize("key", [None, "dev-only-insecure-key-change-me", "short-key"])
def test_production_settings_refuse_the_development_or_a_short_secret_key(key):
    result = _run(["manage.py", "check"], DJANGO_SETTINGS_MODULE="config.settings.production",
                  SECRET_KEY=key)
    assert "SECRET_KEY must be set" in _one_line(result)


def test_production_settings_pass_check_deploy_without_warnings():
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_SETTINGS_MODULE="config.settings.production", SECRET_KEY=LONG_KEY,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_start_up_refuses_to_serve_without_the_static_manifest(tmp_path):
    # gunicorn imports config.wsgi: without `collectstatic` every page would be a 500.
    result = _run(["-c", "import config.wsgi"], DJANGO_SETTINGS_MODULE="config.settings.production",
                  SECRET_KEY=LONG_KEY, STATIC_ROOT=str(tmp_path / "static"))
    line = _one_line(result)
    assert "collectstatic" in line and "staticfiles.json" in line
