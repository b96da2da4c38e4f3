"""Admin screens over a ten-million-row ledger.

Fills a scratch database with N usage events (default 10,000,000 over 30 days,
10,000 customers, 30 features, 12 models) generated inside PostgreSQL, builds
the rollups, then times the usage-event admin pages an ops person opens all
day: the list, a filter, an exact search and the date drill-down down to a day.
The physical limit measured in the same run is the bare indexed query behind
each page (the 50 newest matching rows, joined to customer and feature); each
line prints page time, that query's time and their ratio (query ÷ page, 1.0 =
the page costs no more than its data). The last line is the worst ratio.

    .venv/bin/python bench/ledger_admin.py [--events N] [--keep]

Uses DATABASE_URL's server when set, else the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH_DB = "metron_bench_admin"
MODELS = [
    ("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("openai", "gpt-4.1"), ("openai", "o3"),
    ("openai", "gpt-4.1-mini"), ("openai", "gpt-5"), ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"), ("anthropic", "claude-opus-4-5"), ("openai", "o4-mini"),
    ("openai", "house-finetune"), ("anthropic", "claude-sonnet-4-0"),
]  # fmt: skip


def _point_at_bench_database() -> str:
    """Set DATABASE_URL to a fresh scratch database on the same server; returns its URL."""
    import psycopg

    base = os.environ.get("DATABASE_URL")
    if not base:
        from metron.embedded_db import embedded_database_url

        base = embedded_database_url()
    prefix, _, rest = base.rpartition("/")
    _, _, query = rest.partition("?")
    admin_url = f"{prefix}/postgres" + (f"?{query}" if query else "")
    bench_url = f"{prefix}/{BENCH_DB}" + (f"?{query}" if query else "")
    with psycopg.connect(admin_url.replace("postgres://", "postgresql://"), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{BENCH_DB}"')
    os.environ["DATABASE_URL"] = bench_url
    return admin_url


def _fill(events: int) -> tuple:
    """Create the catalog with the services, the ledger rows in SQL; returns (org, user)."""
    from django.core.management import call_command
    from django.db import connection

    from accounts import services
    from accounts.models import Customer, Feature, Plan
    from accounts.roles import roles_sync

    call_command("migrate", verbosity=0)
    roles_sync()
    org = services.organization_create(slug="bench", name="Bench Co")
    user = services.staff_user_create(
        username="bench-ops", password="bench-ops-password", organization=org, role="ops"
    )
    for code, price in (("free", 0), ("starter", 49), ("pro", 499), ("team", 1500), ("ent", 4999)):
        services.plan_create(organization=org, code=code, name=code.title(), price=price)
    for index in range(30):
        services.feature_create(organization=org, key=f"feature-{index:02d}")
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO accounts_customer (organization_id, external_id, name,
                 stripe_customer_id, segment, region, metadata, is_internal, status,
                 needs_review, created_at, updated_at)
               SELECT %s, 'cust-' || g, 'Customer ' || g, '', '', '', '{}', false, 'active',
                 false, now(), now() FROM generate_series(1, 10000) g""",
            [org.pk],
        )
        customers = list(Customer.objects.filter(organization=org).values_list("pk", flat=True))
        features = list(Feature.objects.filter(organization=org).values_list("pk", flat=True))
        plans = list(Plan.objects.filter(organization=org).values_list("pk", flat=True))
        started = time.perf_counter()
        # Bulk-load as a restore would: drop the table's indexes and constraints,
        # insert, then rebuild them (one sort per index instead of 10M inserts).
        cursor.execute(
            """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
               WHERE conrelid = 'ingestion_usageevent'::regclass AND contype IN ('u', 'f')"""
        )
        constraints = cursor.fetchall()
        cursor.execute(
            """SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'ingestion_usageevent'
               AND indexname NOT IN (SELECT conname FROM pg_constraint
                                     WHERE conrelid = 'ingestion_usageevent'::regclass)"""
        )
        indexes = cursor.fetchall()
        for name, _ in constraints:
            cursor.execute(f'ALTER TABLE ingestion_usageevent DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        # Generated inside the server: Python would take longer than the database.
        cursor.execute(
            """INSERT INTO ingestion_usageevent (organization_id, event_id, timestamp,
                 received_at, payload_hash, customer_id, plan_id, user_id, feature_id, workflow,
                 prompt_version, provider, model, api_key_id, provider_key_id, environment,
                 input_tokens, output_tokens, cached_input_tokens, cache_write_tokens,
                 reasoning_tokens, batch, service_tier, status, attempt, latency_ms,
                 quality_score, billable, metadata, cost, reported_cost, estimated_cost,
                 cost_source, cost_status, price_reference, price_date, attribution_source,
                 attribution_confidence)
               SELECT %(org)s, 'bench-' || g,
                 now() - ((g * 7919) %% 2592000) * interval '1 second', now(), md5(g::text),
                 (%(customers)s::bigint[])[1 + (g * 31) %% 10000],
                 (%(plans)s::bigint[])[1 + g %% 5], 'u' || (g %% 50000),
                 (%(features)s::bigint[])[1 + g %% 30], '', 'v' || (g %% 4),
                 (%(providers)s::text[])[1 + g %% 12], (%(models)s::text[])[1 + g %% 12], '',
                 NULL, CASE WHEN g %% 20 = 0 THEN 'staging' ELSE 'production' END,
                 500 + g %% 9000, 20 + g %% 800, g %% 300, 0, 0, g %% 9 = 0, '',
                 CASE WHEN g %% 50 = 0 THEN 'error' ELSE 'success' END, 1 + (g %% 97 = 0)::int,
                 100 + g %% 4000, NULL, g %% 20 <> 0, '{}',
                 CASE WHEN g %% 12 = 10 THEN NULL ELSE (g %% 1000) / 100000.0 END, NULL,
                 CASE WHEN g %% 12 = 10 THEN NULL ELSE (g %% 1000) / 100000.0 END,
                 CASE WHEN g %% 12 = 10 THEN '' ELSE 'price_book' END,
                 CASE WHEN g %% 12 = 10 THEN 'unpriced' ELSE 'priced' END, 'bench', current_date,
                 'sdk', 'high'
               FROM generate_series(1::bigint, %(events)s::bigint) g""",
            {
                "org": org.pk, "customers": customers, "plans": plans, "features": features,
                "providers": [p for p, _ in MODELS], "models": [m for _, m in MODELS],
                "events": events,
            },
        )  # fmt: skip
        for _, definition in indexes:
            cursor.execute(definition)
        for name, definition in constraints:
            cursor.execute(f'ALTER TABLE ingestion_usageevent ADD CONSTRAINT "{name}" {definition}')
        load = time.perf_counter() - started
        cursor.execute("ANALYZE")
    from datetime import timedelta

    from django.utils import timezone

    from ingestion.services.rollups import rollups_rebuild

    today = timezone.now().date()
    rollups_rebuild(
        organization_id=org.pk, start=today - timedelta(days=31), end=today + timedelta(days=1)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return org, user, load


def _time(call, repeats: int = 5) -> float:
    call()  # warm caches
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    args = parser.parse_args(argv)

    admin_url = _point_at_bench_database()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "metron.settings")
    os.environ["ALLOWED_HOSTS"] = "testserver"
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    print(f"filling {args.events:,} events …", flush=True)
    org, user, load = _fill(args.events)
    print(f"loaded and indexed in {load:.0f} s ({args.events / load:,.0f} rows/s)")
    client = Client()
    client.force_login(user)
    now = django.utils.timezone.now()
    pages = {
        "list": ({}, ""),
        "unpriced filter": ({"cost_status__exact": "unpriced"}, "AND e.cost_status = 'unpriced'"),
        "exact customer search": (
            {"q": "cust-4242"},
            "AND e.customer_id = (SELECT id FROM accounts_customer "
            "WHERE external_id = 'cust-4242')",
        ),
        "month drill-down": (
            {"timestamp__year": now.year, "timestamp__month": now.month},
            f"AND e.timestamp >= '{now:%Y-%m}-01'",
        ),
        "day drill-down": (
            {"timestamp__year": now.year, "timestamp__month": now.month, "timestamp__day": now.day},
            f"AND e.timestamp >= '{now:%Y-%m-%d}'",
        ),  # fmt: skip
    }
    worst = None
    for name, (params, where) in pages.items():
        page = _time(lambda p=params: _get(client, p))

        def query(where=where):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT e.*, c.name, f.name FROM ingestion_usageevent e "
                    "LEFT JOIN accounts_customer c ON c.id = e.customer_id "
                    "LEFT JOIN accounts_feature f ON f.id = e.feature_id "
                    f"WHERE e.organization_id = %s {where} "
                    "ORDER BY e.timestamp DESC, e.id DESC LIMIT 50",
                    [org.pk],
                )
                cursor.fetchall()

        limit = _time(query)
        ratio = limit / page
        worst = ratio if worst is None else min(worst, ratio)
        print(f"{name:24s} page {page * 1000:8.1f} ms   query {limit * 1000:7.1f} ms   "
              f"ratio {ratio:.3f}")  # fmt: skip
    connection.close()
    if not args.keep:
        import psycopg

        with psycopg.connect(
            admin_url.replace("postgres://", "postgresql://"), autocommit=True
        ) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    print(f"admin_ratio={worst:.3f}")
    return 0


def _get(client, params) -> None:
    response = client.get("/admin/ingestion/usageevent/", params)
    if response.status_code != 200:
        raise SystemExit(f"admin answered {response.status_code}")


if __name__ == "__main__":
    raise SystemExit(main())
