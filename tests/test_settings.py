"""Production configuration: required variables and Django's deployment checklist."""

from __future__ import annotations

import secrets

from cryptography.fernet import Fernet

from tests.commands import database_url_for_tests, manage


def production_env(**overrides: str | None) -> dict[str, str | None]:
    env = {
        "METRON_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": database_url_for_tests(),
        "ALLOWED_HOSTS": "metron.example.com",
        "METRON_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }
    env.update(overrides)
    return env


def test_production_passes_the_deployment_checklist_without_warnings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_required_settings():
    for missing in ("SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS", "METRON_ENCRYPTION_KEY"):
        result = manage("check", **production_env(**{missing: None}))
        assert result.returncode != 0
        assert f"{missing} must be set when METRON_ENV=production" in result.stderr


def test_production_refuses_a_non_postgresql_database():
    result = manage("check", **production_env(DATABASE_URL="sqlite:///metron.db"))
    assert result.returncode != 0
    assert "PostgreSQL only" in result.stderr
