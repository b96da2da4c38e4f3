"""The Stripe backfill: every list endpoint, page by page, resumable after a crash.

Phases run in a fixed order (customers first, so the rest can be matched;
invoices before credit notes and refunds, which refer to them). Each page is
fetched, then written together with the run's progress and its resume cursor
(``{"phase": …, "starting_after": …}``) in ONE transaction: a run killed at
any point resumes after the last committed page, so nothing is skipped and
nothing is counted twice; writes are upserts by Stripe id, so even a page
written twice would leave no duplicate.
"""

from __future__ import annotations

import time as clock
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Organization
from ingestion.models import StripeConnection, StripeCustomer, SyncRun
from ingestion.services import revenue
from ingestion.services.stripe import client as api
from ingestion.services.stripe import mirror
from ingestion.services.stripe.plans import customers_plan_history_sync
from ingestion.services.sync_runs import (
    sync_run_claim,
    sync_run_create,
    sync_run_fail,
    sync_run_progress,
    sync_run_succeed,
)

SOURCE = "stripe"
NO_CONNECTION = "Organization {slug!r} has no active Stripe connection; run connect_stripe."


@dataclass(frozen=True)
class Phase:
    name: str
    resource: str
    params: dict[str, Any]
    since_filter: bool  # apply --since as created[gte]


PHASES = [
    Phase("customers", "customers", {}, True),
    Phase("products", "products", {}, False),
    Phase("prices", "prices", {}, False),
    Phase("subscriptions", "subscriptions", {"status": "all"}, True),
    Phase("invoices", "invoices", {}, True),
    Phase("credit_notes", "credit_notes", {}, True),
    Phase("refunds", "refunds", {}, True),
]
PHASE_NAMES = [phase.name for phase in PHASES]
PLAN_HISTORY = "plan_history"  # the last step, after every list is mirrored
DONE = "done"


@dataclass(frozen=True)
class PageReport:
    phase: str
    phase_index: int  # 1-based, out of PHASE_COUNT
    page: int
    items: int
    total_items: int


PHASE_COUNT = len(PHASES) + 1
ProgressCallback = Callable[[PageReport], None]


class StripeNotConnected(Exception):
    pass


def active_connection(organization: Organization) -> StripeConnection:
    connection = (
        StripeConnection.objects.select_related("organization")
        .filter(organization=organization, status=StripeConnection.Status.ACTIVE)
        .first()
    )
    if connection is None:
        raise StripeNotConnected(NO_CONNECTION.format(slug=organization.slug))
    return connection


def stripe_backfill_start(*, organization: Organization, since: date | None = None) -> SyncRun:
    """The backfill run to work on: an unfinished one with the same range, else a new one."""
    active_connection(organization)
    range_start = datetime.combine(since, time(), tzinfo=UTC) if since else None
    unfinished = (
        SyncRun.objects.filter(
            organization=organization, kind=SyncRun.Kind.STRIPE_BACKFILL, range_start=range_start
        )
        .exclude(status=SyncRun.Status.SUCCEEDED)
        .order_by("-created_at")
        .first()
    )
    if unfinished is not None:
        return unfinished
    return sync_run_create(
        organization=organization, kind=SyncRun.Kind.STRIPE_BACKFILL, source=SOURCE,
        range_start=range_start,
    )  # fmt: skip


def _write_page(connection: StripeConnection, phase: Phase, objects: list) -> None:
    """Upsert one page of mirrored objects and rebuild the revenue they carry."""
    for data in objects:
        if phase.name == "customers":
            mirror.customer_upsert(connection=connection, data=data)
        elif phase.name == "products":
            mirror.product_upsert(connection=connection, data=data)
        elif phase.name == "prices":
            mirror.price_upsert(connection=connection, data=data)
        elif phase.name == "subscriptions":
            mirror.subscription_upsert(connection=connection, data=data)
        elif phase.name == "invoices":
            invoice, lines = data
            row = mirror.invoice_upsert(connection=connection, data=invoice, lines=lines)
            revenue.revenue_rebuild_invoice(invoice=row)
        elif phase.name == "credit_notes":
            row = mirror.credit_note_upsert(connection=connection, data=data)
            revenue.revenue_rebuild_credit_note(credit_note=row)
        else:
            row = mirror.refund_upsert(connection=connection, data=data)
            revenue.revenue_rebuild_refund(refund=row)


def _missing_customers(client, organization, objects: list[dict]) -> list[dict]:
    """Stripe customers the page refers to but the mirror lacks (created before --since)."""
    referenced = {mirror.ref(obj.get("customer")) for obj in objects} - {""}
    known = set(
        StripeCustomer.objects.filter(
            organization=organization, stripe_id__in=referenced
        ).values_list("stripe_id", flat=True)
    )
    fetched = (
        api.retrieve(client, "customers", stripe_id) for stripe_id in sorted(referenced - known)
    )
    return [data for data in fetched if data is not None]


def _fetch_page(
    client, organization, phase: Phase, *, starting_after: str | None, since, page_size: int
):
    params: dict[str, Any] = {"limit": page_size}
    for key, value in phase.params.items():
        if value is not None:
            params[key] = value
    if phase.name == "invoices":
        params["expand"] = api.INVOICE_LIST_EXPAND
    if starting_after:
        params["starting_after"] = starting_after
    if since is not None and phase.since_filter:
        params["created"] = {"gte": int(since.timestamp())}
    objects, has_more = api.list_page(client, phase.resource, params=params)
    last_id = objects[-1]["id"] if objects else None
    if phase.name in ("customers", "products", "prices"):
        extra: list[dict] = []
    else:
        extra = _missing_customers(client, organization, objects)
    if phase.name == "invoices":
        # Lines beyond the embedded first page are fetched before anything is written.
        objects = [(invoice, api.invoice_lines_all(client, invoice)) for invoice in objects]
    return objects, has_more, last_id, extra


def _release(run: SyncRun) -> None:
    # Hand the run back (its cursor kept) so the next task claims it at once; a
    # candidate for ingestion.services.sync_runs (sync_run_release).
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.PENDING, heartbeat_at=timezone.now()
    )


def stripe_backfill_execute(
    *,
    run_id: int,
    page_size: int = api.PAGE_SIZE,
    on_page: ProgressCallback | None = None,
    time_budget: float | None = None,
) -> SyncRun | None:
    """Claim the run and mirror everything from where its cursor left off.

    With ``time_budget`` (seconds), stops after the first page committed past it and
    hands the run back as PENDING, to be continued by a new task (long backfills stay
    below the task timeout). Returns the run, or None if another worker holds it (or
    it is done). Failures are recorded on the run and re-raised so the queue retries.
    """
    run = sync_run_claim(run_id=run_id)
    if run is None:
        return None
    deadline = clock.monotonic() + time_budget if time_budget is not None else None
    try:
        connection = active_connection(run.organization)
        client = api.stripe_client(connection)
        cursor = dict(run.cursor or {})
        phase_name = cursor.get("phase") or PHASE_NAMES[0]
        order = [*PHASE_NAMES, PLAN_HISTORY, DONE]
        start_index = order.index(phase_name) if phase_name in order else 0
        total = run.items
        for index in range(start_index, len(PHASES)):
            phase = PHASES[index]
            starting_after = cursor.get("starting_after") if phase_name == phase.name else None
            page = 0
            while True:
                objects, has_more, last_id, customers = _fetch_page(
                    client, run.organization, phase, starting_after=starting_after,
                    since=run.range_start, page_size=page_size,
                )  # fmt: skip
                done = not (has_more and last_id)
                next_cursor = (
                    {"phase": phase.name, "starting_after": last_id}
                    if not done
                    else {"phase": order[index + 1]}
                )
                with transaction.atomic():
                    for data in customers:
                        mirror.customer_upsert(connection=connection, data=data)
                    _write_page(connection, phase, objects)
                    sync_run_progress(run=run, pages=1, items=len(objects), cursor=next_cursor)
                cursor = next_cursor
                page += 1
                total += len(objects)
                if on_page is not None:
                    on_page(PageReport(phase.name, index + 1, page, len(objects), total))
                if deadline is not None and clock.monotonic() > deadline:
                    _release(run)
                    run.refresh_from_db()
                    return run
                if done:
                    break
                starting_after = last_id
        if cursor.get("phase") != DONE:
            with transaction.atomic():
                # Every matched customer: subscriptions and invoice lines are all mirrored now.
                customer_ids = sorted(
                    set(
                        StripeCustomer.objects.filter(
                            organization=run.organization, customer__isnull=False
                        ).values_list("customer_id", flat=True)
                    )
                )
                customers_plan_history_sync(customer_ids=customer_ids)
                sync_run_progress(run=run, cursor={"phase": DONE})
            if on_page is not None:
                on_page(PageReport(PLAN_HISTORY, PHASE_COUNT, 1, len(customer_ids), total))
        StripeConnection.objects.filter(pk=connection.pk).update(
            last_synced_at=timezone.now(), last_error=""
        )
        sync_run_succeed(run=run)
    except BaseException as error:
        sync_run_fail(run=run, error=f"{type(error).__name__}: {error}")
        StripeConnection.objects.filter(organization=run.organization).update(
            last_error=str(error)[:2000]
        )
        raise
    run.refresh_from_db()
    return run
