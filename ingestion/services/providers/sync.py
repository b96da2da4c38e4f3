"""Resumable, idempotent syncs of provider usage buckets and cost lines.

Every sync is a ``SyncRun`` over a fixed window ``[range_start, range_end)``. Each page is
written in one transaction together with the run's progress and its resume cursor (the
provider's ``next_page`` token), so a worker killed at any point leaves either the whole
page and its cursor or neither; a resumed run continues from the cursor. Rows are upserted
by their natural key, so pages read twice (a resume, an overlapping run, the re-read of the
last ``resync_days`` days that providers revise) update rows instead of duplicating them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from ingestion.models import ProviderConnection, ProviderCostLine, ProviderUsageBucket, SyncRun
from ingestion.pricing import PriceBook, TokenUsage, quantize_cost
from ingestion.services.providers.clients import (
    AdminClient,
    CostRow,
    Page,
    ProviderAPIError,
    UsageRow,
)
from ingestion.services.providers.connections import provider_connection_client
from ingestion.services.providers.keys import provider_keys_register, provider_keys_touch
from ingestion.services.sync_runs import (
    stale_after,
    sync_run_claim,
    sync_run_create,
    sync_run_fail,
    sync_run_progress,
    sync_run_succeed,
)

logger = logging.getLogger(__name__)

USAGE = SyncRun.Kind.PROVIDER_USAGE
COSTS = SyncRun.Kind.PROVIDER_COSTS
WIDTHS = {"1d": timedelta(days=1), "1h": timedelta(hours=1)}
# Unit prices are taken from a quote of this many tokens: below every context-size tier
# (200K+ tokens per request), so an aggregate bucket is priced at the per-request base
# rate, as its requests were, not as one giant request.
PRICE_SAMPLE = 100_000
EXPIRED_CURSOR_STATUSES = (400, 404, 410)

USAGE_FIELDS = (
    "requests",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "web_search_requests",
)
USAGE_KEY = (
    "organization",
    "provider",
    "bucket_width",
    "bucket_start",
    "project_id",
    "api_key_id",
    "model",
    "batch",
    "service_tier",
)
COST_KEY = (
    "organization",
    "provider",
    "day",
    "line_item",
    "project_id",
    "api_key_id",
    "model",
    "cost_type",
    "token_type",
    "service_tier",
    "context_window",
)

OnPage = Callable[[SyncRun, Page], None]


# --- windows and runs ------------------------------------------------------------------


def _floor(moment: datetime, width: str) -> datetime:
    moment = moment.astimezone(UTC)
    if width == "1h":
        return moment.replace(minute=0, second=0, microsecond=0)
    return datetime.combine(moment.date(), time.min, tzinfo=UTC)


def provider_sync_window(
    *,
    connection: ProviderConnection,
    width: str = "1d",
    since: date | None = None,
    now: datetime | None = None,
) -> tuple[datetime, datetime]:
    """``[start, end)`` of a sync: ``since`` (else ``resync_days`` ago) to the current bucket end.

    Providers revise recent days, so every run re-reads the last ``resync_days`` days.
    """
    if width not in WIDTHS:
        raise ValueError(f"bucket width must be one of {', '.join(WIDTHS)}, not {width!r}")
    now = now or timezone.now()
    today = datetime.combine(now.astimezone(UTC).date(), time.min, tzinfo=UTC)
    if since is None:
        start = today - timedelta(days=connection.resync_days)
    else:
        start = datetime.combine(since, time.min, tzinfo=UTC)
    end = _floor(now, width) + WIDTHS[width]
    if start >= end:
        raise ValueError(f"nothing to sync: {start:%Y-%m-%d} is not before {end:%Y-%m-%d %H:%M}")
    return start, end


def _runs(connection: ProviderConnection, kind: str):
    return SyncRun.objects.filter(
        organization_id=connection.organization_id, kind=kind, source=connection.provider
    )


def provider_sync_unfinished(*, connection: ProviderConnection, kind: str) -> list[SyncRun]:
    """Runs of ``kind`` that stopped mid-way: a dead worker's (stale heartbeat) or never claimed.

    Failed runs are not resumed here (the next run re-reads its window);
    ``provider_sync_execute`` resumes one by id.
    """
    stale = timezone.now() - stale_after()
    return list(
        _runs(connection, kind)
        .filter(
            Q(status=SyncRun.Status.PENDING, created_at__lt=stale)
            | Q(status=SyncRun.Status.RUNNING, heartbeat_at__lt=stale)
        )
        .order_by("created_at")
    )


def provider_sync_alive(*, connection: ProviderConnection, kind: str) -> SyncRun | None:
    """A run of ``kind`` another worker is working on right now (fresh heartbeat), if any."""
    stale = timezone.now() - stale_after()
    return (
        _runs(connection, kind)
        .filter(status=SyncRun.Status.RUNNING, heartbeat_at__gte=stale)
        .order_by("-created_at")
        .first()
    )


def provider_sync_create(
    *,
    connection: ProviderConnection,
    kind: str,
    width: str = "1d",
    since: date | None = None,
    now: datetime | None = None,
) -> SyncRun:
    """A new pending run of ``kind`` (usage or costs) over the sync window."""
    if kind == COSTS:
        width = "1d"  # both cost reports are daily only
    start, end = provider_sync_window(connection=connection, width=width, since=since, now=now)
    run = sync_run_create(
        organization=connection.organization, kind=kind, source=connection.provider,
        range_start=start, range_end=end,
    )  # fmt: skip
    run.cursor = {"width": width, "page": None}
    run.save(update_fields=["cursor"])
    return run


def provider_sync_execute(
    *, run_id: int, client: AdminClient | None = None, on_page: OnPage | None = None
) -> SyncRun:
    """Claim run ``run_id`` and work it to the end from its cursor; returns the run as left.

    A run that is finished, or alive in another worker, is returned untouched. A provider
    error (after the client's retries) fails the run with a message for ops; the run can be
    resumed from its cursor by a later call. Unexpected errors fail the run and propagate.
    """
    run = sync_run_claim(run_id=run_id)
    if run is None:
        return SyncRun.objects.get(pk=run_id)
    connection = (
        ProviderConnection.objects.select_related("organization")
        .filter(organization_id=run.organization_id, provider=run.source)
        .first()
    )
    if connection is None:
        sync_run_fail(run=run, error=f"No {run.source} connection any more: nothing to sync.")
        run.refresh_from_db()
        return run
    try:
        client = client or provider_connection_client(connection=connection)
        if run.kind == USAGE:
            _sync_pages(run, connection, client.usage_page, _store_usage, on_page)
        elif run.kind == COSTS:
            _sync_pages(run, connection, client.costs_page, _store_costs, on_page)
        else:
            raise ValueError(f"run {run.pk} is a {run.kind} run, not a provider sync")
    except ProviderAPIError as error:
        sync_run_fail(run=run, error=error)
        if error.is_auth_error:
            ProviderConnection.objects.filter(pk=connection.pk).update(
                status=ProviderConnection.Status.FAILED, status_message=str(error),
                updated_at=timezone.now(),
            )  # fmt: skip
        logger.warning("provider sync run %s failed: %s", run.pk, error)
    except BaseException as error:
        sync_run_fail(run=run, error=f"{type(error).__name__}: {error}")
        raise
    else:
        sync_run_succeed(run=run)
        field = "last_usage_synced_at" if run.kind == USAGE else "last_costs_synced_at"
        ProviderConnection.objects.filter(pk=connection.pk).update(
            **{field: timezone.now()}, updated_at=timezone.now()
        )
    run.refresh_from_db()
    return run


def provider_sync(
    *,
    connection: ProviderConnection,
    kind: str,
    width: str = "1d",
    since: date | None = None,
    resume_only: bool = False,
    client: AdminClient | None = None,
    on_page: OnPage | None = None,
) -> list[SyncRun]:
    """Resume this connection's interrupted runs of ``kind``, then run a new one.

    No new run starts while another worker's run of the same kind is alive (the scheduler
    does not skip slow jobs, so they would pile up). ``resume_only`` only resumes.
    """
    runs = [
        provider_sync_execute(run_id=run.pk, client=client, on_page=on_page)
        for run in provider_sync_unfinished(connection=connection, kind=kind)
    ]
    if resume_only or provider_sync_alive(connection=connection, kind=kind) is not None:
        return runs
    run = provider_sync_create(connection=connection, kind=kind, width=width, since=since)
    runs.append(provider_sync_execute(run_id=run.pk, client=client, on_page=on_page))
    return runs


def _sync_pages(run: SyncRun, connection, fetch, store, on_page: OnPage | None) -> None:
    width = run.cursor.get("width", "1d")
    page = run.cursor.get("page")
    resumed = bool(page)
    book = PriceBook.for_organization(run.organization_id)
    while True:
        kwargs = {"start": run.range_start, "end": run.range_end, "page": page}
        if store is _store_usage:
            kwargs["width"] = width
        try:
            result = fetch(**kwargs)
        except ProviderAPIError as error:
            if not (resumed and error.status in EXPIRED_CURSOR_STATUSES):
                raise
            # The stored page token expired: read the window again from its start
            # (upserts make the re-read harmless).
            logger.info("run %s: resume cursor refused (%s); restarting the window", run.pk, error)
            resumed, page = False, None
            continue
        resumed = False
        more = bool(result.has_more and result.next_page)
        with transaction.atomic():
            items = store(connection, width, result.rows, book)
            cursor = {"width": width, "page": result.next_page if more else None}
            if result.covered_until is not None:
                cursor["covered_until"] = result.covered_until.isoformat()
            sync_run_progress(run=run, pages=1, items=items, cursor=cursor)
        if on_page is not None:
            on_page(run, result)
        if not more:
            return
        page = result.next_page


# --- usage ------------------------------------------------------------------------------


def _merge_usage(rows: Iterable[UsageRow]) -> list[UsageRow]:
    """Rows of one page summed by natural key (a key may repeat across unstored dimensions)."""
    merged: dict[tuple, UsageRow] = {}
    for row in rows:
        seen = merged.get(row.natural_key)
        if seen is None:
            merged[row.natural_key] = row
            continue
        sums = {
            name: (getattr(seen, name) or 0) + (getattr(row, name) or 0) for name in USAGE_FIELDS
        }
        if seen.requests is None and row.requests is None:
            sums["requests"] = None
        merged[row.natural_key] = replace(seen, **sums)
    return list(merged.values())


def usage_row_cost(*, book: PriceBook, provider: str, row: UsageRow) -> tuple[Decimal | None, str]:
    """USD cost of a usage bucket at Metron's prices (as the ledger prices events).

    Each token type is priced at the per-token rate the price book quotes for the bucket's
    day, batch flag and service tier; ``None`` when the model or a used token type has no
    price (never $0). Request fees (a few models) are not included: buckets do not say how
    many requests carried them.
    """
    if not row.model:
        return None, ""
    uncached = max(row.input_tokens - row.cached_input_tokens - row.cache_write_tokens, 0)
    parts = (
        (uncached, TokenUsage(PRICE_SAMPLE, 0)),
        (row.cached_input_tokens, TokenUsage(PRICE_SAMPLE, 0, cached_input_tokens=PRICE_SAMPLE)),
        (row.cache_write_tokens, TokenUsage(PRICE_SAMPLE, 0, cache_write_tokens=PRICE_SAMPLE)),
        (row.output_tokens, TokenUsage(0, PRICE_SAMPLE)),
    )
    total, reference = Decimal(0), ""
    for count, sample in parts:
        if not count:
            continue
        quote = book.quote(
            provider=provider, model=row.model, at=row.bucket_start, usage=sample,
            batch=row.batch, service_tier=row.service_tier,
        )  # fmt: skip
        if quote is None:
            return None, ""
        total += quote.cost * count / PRICE_SAMPLE
        reference = quote.reference
    return quantize_cost(total), reference


def _store_usage(connection, width: str, rows: list[UsageRow], book: PriceBook) -> int:
    rows = _merge_usage(rows)
    if not rows:
        return 0
    organization: Organization = connection.organization
    provider = connection.provider
    keys = provider_keys_register(
        organization=organization, provider=provider, key_ids={r.api_key_id for r in rows}
    )
    now = timezone.now()
    last_seen: dict[int, datetime] = {}
    buckets = []
    for row in rows:
        key = keys.get(row.api_key_id)
        if key is not None and (row.input_tokens or row.output_tokens or row.requests):
            seen = min(row.bucket_end, now)
            last_seen[key[0]] = max(last_seen.get(key[0], seen), seen)
        cost, reference = usage_row_cost(book=book, provider=provider, row=row)
        buckets.append(
            ProviderUsageBucket(
                organization=organization,
                provider=provider,
                bucket_start=row.bucket_start,
                bucket_width=width,
                project_id=row.project_id,
                api_key_id=row.api_key_id,
                model=row.model,
                batch=row.batch,
                service_tier=row.service_tier,
                **{name: getattr(row, name) for name in USAGE_FIELDS},
                estimated_cost=cost,
                price_reference=reference[:255],
                provider_key_id=key[0] if key else None,
            )  # fmt: skip
        )
    ProviderUsageBucket.objects.bulk_create(
        buckets,
        update_conflicts=True,
        unique_fields=USAGE_KEY,
        update_fields=[
            *USAGE_FIELDS,
            "estimated_cost",
            "price_reference",
            "provider_key",
            "updated_at",
        ],
    )
    provider_keys_touch(last_seen=last_seen)
    return len(buckets)


# --- costs ------------------------------------------------------------------------------


def _merge_costs(rows: Iterable[CostRow]) -> list[CostRow]:
    merged: dict[tuple, CostRow] = {}
    for row in rows:
        row = replace(row, amount=quantize_cost(row.amount))
        seen = merged.get(row.natural_key)
        if seen is None:
            merged[row.natural_key] = row
            continue
        if seen.currency != row.currency:
            raise ProviderAPIError(
                f"cost lines of {row.day} {row.line_item!r} in {seen.currency} and "
                f"{row.currency}: amounts in different currencies are not added"
            )
        quantity = None
        if seen.quantity is not None or row.quantity is not None:
            quantity = (seen.quantity or 0) + (row.quantity or 0)
        merged[row.natural_key] = replace(seen, amount=seen.amount + row.amount, quantity=quantity)
    return list(merged.values())


def _store_costs(connection, width: str, rows: list[CostRow], book: PriceBook) -> int:
    rows = _merge_costs(rows)
    if not rows:
        return 0
    lines = [
        ProviderCostLine(
            organization=connection.organization,
            provider=connection.provider,
            day=row.day,
            line_item=row.line_item[:255],
            project_id=row.project_id,
            api_key_id=row.api_key_id,
            model=row.model,
            cost_type=row.cost_type,
            token_type=row.token_type,
            service_tier=row.service_tier,
            context_window=row.context_window,
            amount=row.amount,
            currency=row.currency,
            quantity=row.quantity,
            quantity_unit=row.quantity_unit,
        )
        for row in rows
    ]
    ProviderCostLine.objects.bulk_create(
        lines,
        update_conflicts=True,
        unique_fields=COST_KEY,
        update_fields=["amount", "currency", "quantity", "quantity_unit", "updated_at"],
    )
    return len(lines)
