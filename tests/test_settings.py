"""Production configuration: required variables and Django's deployment checklist."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    db = settings.DATABASES["default"]
    host = db["HOST"]
    if host.startswith("/"):  # the embedded server listens on a unix socket
        return f"postgresql://{db['USER']}@/{db['NAME']}?host={host}"
    return f"postgresql://{db['USER']}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "SECRET_KEY",
            "DATABASE_URL",
            "ALLOWED_HOSTS",
            "DJANGO_SETTINGS_MODULE",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def production_env(**overrides: str) -> dict[str, str]:
    env = {
        "METRON_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": database_url(),
        "ALLOWED_HOSTS": "metron.example.com",
    }
    env.update(overrides)
    return {key: value for key, value in env.items() if value}


def test_production_passes_the_deployment_checklist_without_warnings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_required_settings():
    for missing in ("SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS"):
        result = manage("check", **production_env(**{missing: ""}))
        assert result.returncode != 0
        assert f"{missing} must be set when METRON_ENV=production" in result.stderr


def test_production_refuses_a_non_postgresql_database():
    result = manage("check", **production_env(DATABASE_URL="sqlite:///metron.db"))
    assert result.returncode != 0
    assert "PostgreSQL only" in result.stderr
