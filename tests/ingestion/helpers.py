"""Building usage events and checking rollups against the raw ledger."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from ingestion.models import DailyUsage
from ingestion.services.rollups import DIMENSIONS, EVENTS, SUMS

_ids = itertools.count(1)


def event(**overrides) -> dict:
    """A valid raw event: gpt-4o in production, one hour ago, unique id."""
    raw = {
        "event_id": f"evt-{next(_ids):08d}",
        "timestamp": (timezone.now() - timedelta(hours=1)).isoformat(),
        "customer_id": "cust-1",
        "feature": "chat",
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": 1000,
        "output_tokens": 200,
    }
    raw.update(overrides)
    return {key: value for key, value in raw.items() if value is not None}


def day_ago(days: float, *, now: datetime | None = None) -> str:
    return ((now or timezone.now()) - timedelta(days=days)).astimezone(UTC).isoformat()


def ledger_aggregate(organization_id: int) -> dict[tuple, tuple]:
    """The rollups as they must be: the ledger aggregated from scratch, by dimension tuple."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(DIMENSIONS.values())}, {', '.join(SUMS.values())} "
            f"FROM {EVENTS} WHERE organization_id = %s "
            f"GROUP BY {', '.join(str(i) for i in range(1, len(DIMENSIONS) + 1))}",
            [organization_id],
        )
        rows = cursor.fetchall()
    width = len(DIMENSIONS)
    return {tuple(row[:width]): tuple(_norm(v) for v in row[width:]) for row in rows}


def rollup_rows(organization_id: int) -> dict[tuple, tuple]:
    rows = DailyUsage.objects.filter(organization_id=organization_id).values_list(
        *DIMENSIONS, *SUMS
    )
    width = len(DIMENSIONS)
    return {tuple(row[:width]): tuple(_norm(v) for v in row[width:]) for row in rows}


def _norm(value):
    return value.normalize() if isinstance(value, Decimal) else value
