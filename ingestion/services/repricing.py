"""Repricing: the only way an event's cost changes after it was stored.

A run recomputes the estimate (and the cost, unless the provider reported one)
of every event in a half-open time range with the current price book and
overrides, rebuilds the rollups of the days it touched, and records what it did:
range, events touched and changed, totals before and after, who ran it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from accounts.models import Organization, User
from ingestion.models import CostSource, CostStatus, RepricingRun, UsageEvent
from ingestion.pricing import PriceBook, TokenUsage
from ingestion.services.rollups import rollups_rebuild
from metron.money import ZERO

CHUNK = 5000  # events per read/update round trip; a few MB of memory
RANGE_INVALID = "The repricing range must end after it starts."

_UPDATE = f"""
    UPDATE {UsageEvent._meta.db_table} AS e SET
        cost = v.cost, estimated_cost = v.estimated_cost, cost_source = v.cost_source,
        cost_status = v.cost_status, price_reference = v.price_reference,
        price_date = v.price_date
    FROM unnest(%s::bigint[], %s::numeric[], %s::numeric[], %s::text[], %s::text[],
                %s::text[], %s::date[])
        AS v(id, cost, estimated_cost, cost_source, cost_status, price_reference, price_date)
    WHERE e.id = v.id
"""

FIELDS = (
    "id", "provider", "model", "timestamp", "input_tokens", "output_tokens",
    "cached_input_tokens", "cache_write_tokens", "reasoning_tokens", "batch", "service_tier",
    "reported_cost", "cost", "estimated_cost", "cost_source", "cost_status",
    "price_reference", "price_date",
)  # fmt: skip


def _totals(organization: Organization, start: datetime, end: datetime) -> dict:
    return UsageEvent.objects.filter(
        organization=organization, timestamp__gte=start, timestamp__lt=end
    ).aggregate(
        events=Count("id"),
        cost=Sum("cost"),
        unpriced=Count("id", filter=Q(cost_status=CostStatus.UNPRICED)),
    )


def _reprice_row(row: tuple, prices: PriceBook) -> tuple | None:
    """The new cost columns of one event, or None when nothing changes."""
    (pk, provider, model, at, inp, out, cached, written, reasoning, batch, tier, reported,
     cost, estimate, source, status, reference, price_date) = row  # fmt: skip
    quote = prices.quote(
        provider=provider, model=model, at=at,
        usage=TokenUsage(inp, out, cached, written, reasoning), batch=batch, service_tier=tier,
    )  # fmt: skip
    new_estimate = quote.cost if quote else None
    if reported is not None:
        new = (reported, new_estimate, CostSource.PROVIDER_REPORTED, CostStatus.PRICED)
    elif quote is not None:
        new = (quote.cost, new_estimate, quote.source, CostStatus.PRICED)
    else:
        new = (None, None, "", CostStatus.UNPRICED)
    new_reference = quote.reference if quote else ""
    new_date = quote.price_date if quote else at.date()
    if (cost, estimate, source, status, reference, price_date) == (*new, new_reference, new_date):
        return None
    return (pk, new[0], new[1], str(new[2]), str(new[3]), new_reference, new_date)


def usage_reprice(
    *,
    organization: Organization,
    start: datetime,
    end: datetime,
    started_by: User | None = None,
    reason: str = "",
) -> RepricingRun:
    """Reprice the organization's events in ``[start, end)`` and rebuild their days' rollups.

    The run row is written first and kept even if the repricing fails, so a
    failed attempt is visible. Ingest of the organization waits while the
    rollups are rebuilt.
    """
    if end <= start:
        raise ValueError(RANGE_INVALID)
    run = RepricingRun.objects.create(
        organization=organization, range_start=start, range_end=end, started_by=started_by,
        reason=reason,
    )  # fmt: skip
    try:
        with transaction.atomic():
            before = _totals(organization, start, end)
            prices = PriceBook.for_organization(organization)
            rows = (
                UsageEvent.objects.filter(
                    organization=organization, timestamp__gte=start, timestamp__lt=end
                )
                .order_by("id")
                .values_list(*FIELDS)
            )
            changed = 0
            pending: list[tuple] = []
            for row in rows.iterator(chunk_size=CHUNK):
                update = _reprice_row(row, prices)
                if update is not None:
                    pending.append(update)
                if len(pending) >= CHUNK:
                    changed += _apply(pending)
            changed += _apply(pending)
            last_day = (end - timedelta(microseconds=1)).date()
            rollups_rebuild(
                organization_id=organization.pk, start=start.date(),
                end=last_day + timedelta(days=1),
            )  # fmt: skip
            after = _totals(organization, start, end)
            run.events_touched = after["events"]
            run.events_changed = changed
            run.cost_before = before["cost"] or ZERO
            run.cost_after = after["cost"] or ZERO
            run.unpriced_before = before["unpriced"]
            run.unpriced_after = after["unpriced"]
            run.status = RepricingRun.Status.DONE
            run.finished_at = timezone.now()
            run.save()
    except Exception as error:
        RepricingRun.objects.filter(pk=run.pk).update(
            status=RepricingRun.Status.FAILED, error=str(error)[:2000],
            finished_at=timezone.now(),
        )  # fmt: skip
        raise
    return run


def _apply(pending: list[tuple]) -> int:
    if not pending:
        return 0
    columns = [list(column) for column in zip(*pending, strict=True)]
    with psycopg.Cursor(connection.connection) as cursor:  # server-side binding, as ingest
        cursor.execute(_UPDATE, columns)
    count = len(pending)
    pending.clear()
    return count
