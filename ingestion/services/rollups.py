"""Daily rollups: maintained from the ledger, always equal to aggregating it.

Ingest adds the aggregates of the rows it just inserted (one upsert of the
touched dimension tuples, in the statement that inserts them); repricing
rebuilds whole days from the ledger. Both run inside the transaction that
wrote the ledger rows, so a reader never sees one without the other. An
advisory lock per organization keeps a rebuild from interleaving with concurrent
ingests (ingests share it, rebuilds take it alone).
"""

from __future__ import annotations

from datetime import date

from django.db import connection

from ingestion.models import DailyUsage, UsageChange, UsageEvent

LOCK_CLASS = 7301  # advisory lock namespace of the rollups

EVENTS = UsageEvent._meta.db_table
ROLLUPS = DailyUsage._meta.db_table
CONSTRAINT = "daily_usage_unique_dimensions"

# Rollup column → aggregate over the ledger rows of one dimension tuple.
SUMS = {
    "requests": "count(*)",
    "errors": "count(*) FILTER (WHERE status = 'error')",
    "retries": "count(*) FILTER (WHERE attempt > 1)",
    "input_tokens": "coalesce(sum(input_tokens), 0)",
    "output_tokens": "coalesce(sum(output_tokens), 0)",
    "cached_input_tokens": "coalesce(sum(cached_input_tokens), 0)",
    "cache_write_tokens": "coalesce(sum(cache_write_tokens), 0)",
    "reasoning_tokens": "coalesce(sum(reasoning_tokens), 0)",
    "cost": "coalesce(sum(cost), 0)",
    "estimated_cost": "coalesce(sum(estimated_cost), 0)",
    "retry_cost": "coalesce(sum(cost) FILTER (WHERE attempt > 1), 0)",
    "unpriced_requests": "count(*) FILTER (WHERE cost_status = 'unpriced')",
}
DIMENSIONS = {
    "organization_id": "organization_id",
    "day": "(timestamp AT TIME ZONE 'UTC')::date",
    "customer_id": "customer_id",
    "feature_id": "feature_id",
    "plan_id": "plan_id",
    "provider": "provider",
    "model": "model",
    "environment": "environment",
    "batch": "batch",
    "billable": "billable",
}

# The ledger columns the aggregates above read: what an insert returns for them.
SOURCE_COLUMNS = (
    "organization_id", "timestamp", "customer_id", "feature_id", "plan_id", "provider", "model",
    "environment", "batch", "billable", "status", "attempt", "input_tokens", "output_tokens",
    "cached_input_tokens", "cache_write_tokens", "reasoning_tokens", "cost", "estimated_cost",
    "cost_status",
)  # fmt: skip

_COLUMNS = ", ".join([*DIMENSIONS, *SUMS])
_SELECT = ", ".join([*DIMENSIONS.values(), *SUMS.values()])
_GROUP = ", ".join(str(position) for position in range(1, len(DIMENSIONS) + 1))


def rollups_add_sql(source: str) -> str:
    """SQL adding the aggregates of the ledger rows in ``source`` (a table or CTE name
    with the ledger's columns, holding just-inserted rows) to their daily rollups.

    Ingest runs it as part of its insert statement, on the rows the insert returns.
    Groups are written in key order, so concurrent ingests lock rollup rows in the
    same order and cannot deadlock.
    """
    return f"""
    INSERT INTO {ROLLUPS} ({_COLUMNS})
    SELECT {_SELECT} FROM {source}
    GROUP BY {_GROUP} ORDER BY {_GROUP}
    ON CONFLICT ON CONSTRAINT {CONSTRAINT} DO UPDATE SET
    {", ".join(f"{col} = {ROLLUPS}.{col} + EXCLUDED.{col}" for col in SUMS)}
    """


_REBUILD = f"""
    INSERT INTO {ROLLUPS} ({_COLUMNS})
    SELECT {_SELECT} FROM {EVENTS}
    WHERE organization_id = %s AND timestamp >= %s AND timestamp < %s
    GROUP BY {_GROUP} ORDER BY {_GROUP}
"""


def rollups_lock_shared(*, organization_id: int) -> None:
    """Taken by ingests (many at once); released at the end of the transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", [LOCK_CLASS, organization_id])


def rollups_rebuild(*, organization_id: int, start: date, end: date) -> None:
    """Recompute the organization's rollups of days ``[start, end)`` from the ledger.

    Must run inside a transaction; waits for in-flight ingests of the
    organization and holds them off until the transaction ends.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_CLASS, organization_id])
        cursor.execute(
            f"DELETE FROM {ROLLUPS} WHERE organization_id = %s AND day >= %s AND day < %s",
            [organization_id, start, end],
        )
        cursor.execute(
            _REBUILD,
            [organization_id, f"{start.isoformat()}T00:00:00Z", f"{end.isoformat()}T00:00:00Z"],
        )
    usage_changes_record(organization_id=organization_id, start=start, end=end)


def usage_changes_record(*, organization_id: int, start: date, end: date) -> None:
    """Mark the days ``[start, end)`` changed, for the projections that follow the rollups."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {UsageChange._meta.db_table} (organization_id, day) "
            "SELECT %s, d::date FROM generate_series(%s::date, %s::date - 1, '1 day') AS d",
            [organization_id, start, end],
        )
