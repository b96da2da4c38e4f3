"""Run ``manage.py`` in a subprocess against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
# Never inherited by the child: it must configure itself from what the test passes.
SCRUBBED = {
    "SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE", "METRON_ENV",
}  # fmt: skip


def database_url_for_tests() -> str:
    """A DATABASE_URL for the database the current test uses (TCP or unix socket)."""
    db = connection.settings_dict
    host = db["HOST"] or "127.0.0.1"
    if host.startswith("/"):  # the embedded server listens on a unix socket
        return f"postgresql://{db['USER']}@/{db['NAME']}?host={host}"
    return f"postgresql://{db['USER']}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def manage(*args: str, **env: str | None) -> subprocess.CompletedProcess:
    """Run ``manage.py *args`` with a clean environment plus ``env`` (None unsets a
    variable); output captured. DATABASE_URL defaults to the test database."""
    environment = {key: value for key, value in os.environ.items() if key not in SCRUBBED}
    environment["DATABASE_URL"] = database_url_for_tests()
    environment.update(env)
    environment = {key: value for key, value in environment.items() if value is not None}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
