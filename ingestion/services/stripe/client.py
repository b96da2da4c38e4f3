"""Talking to the Stripe API: the client, 429 backoff, and fetching whole objects.

``StripeClient`` retries connection errors, 409 and 5xx itself, but only when
``max_network_retries`` is passed (``None`` means *no* retry), and never retries
429 unless Stripe says so. So every client is built here with an explicit
``MAX_NETWORK_RETRIES`` (a test checks every ``StripeClient(`` call in the code
base), and :func:`stripe_call` backs off and retries 429 itself, honouring
``Retry-After``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import stripe

from ingestion.models import StripeConnection

MAX_NETWORK_RETRIES = 2  # 3 attempts on connection errors, 409 and 5xx
RATE_LIMIT_ATTEMPTS = 5
RATE_LIMIT_BASE_DELAY = 1.0  # seconds, doubled per attempt, when Retry-After is absent
RATE_LIMIT_MAX_DELAY = 60.0
PAGE_SIZE = 100  # Stripe's maximum
# Where an invoice's payment intents are since API 2025-03-31 (lists expand "data.…").
# If an account answers that it cannot expand it, Metron carries on without: refunds
# then reach their customer through ``refund.customer`` and only the invoice link is lost.
INVOICE_EXPAND = ["payments"]
INVOICE_LIST_EXPAND = ["data.payments"]

T = TypeVar("T")
_sleep = time.sleep  # replaced by tests that count the backoff instead of waiting


def stripe_client(connection: StripeConnection) -> stripe.StripeClient:
    """A client for the connection's account, pointed at its API base."""
    return stripe.StripeClient(
        connection.api_key,
        base_addresses={"api": connection.api_base.rstrip("/")},
        max_network_retries=MAX_NETWORK_RETRIES,
    )


def _retry_after(error: stripe.StripeError) -> float | None:
    for key, value in (error.headers or {}).items():
        if key.lower() == "retry-after":
            try:
                return min(max(float(value), 0.0), RATE_LIMIT_MAX_DELAY)
            except ValueError:
                return None
    return None


def stripe_call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a Stripe client method, backing off and retrying on 429.

    Waits ``Retry-After`` seconds when the answer says so, else an exponential
    delay with jitter; gives up (re-raises) after ``RATE_LIMIT_ATTEMPTS``.
    """
    for attempt in range(1, RATE_LIMIT_ATTEMPTS + 1):
        try:
            return fn(*args, **kwargs)
        except stripe.RateLimitError as error:
            if attempt == RATE_LIMIT_ATTEMPTS:
                raise
            delay = _retry_after(error)
            if delay is None:
                ceiling = min(RATE_LIMIT_BASE_DELAY * 2 ** (attempt - 1), RATE_LIMIT_MAX_DELAY)
                delay = random.uniform(ceiling / 2, ceiling)
            _sleep(delay)
    raise AssertionError("unreachable")


def plain(obj: Any) -> dict:
    """A Stripe object as JSON-safe plain data (Decimal fields become strings)."""
    if isinstance(obj, dict):
        return obj
    return obj.to_dict(for_json=True)


def list_page(
    client: stripe.StripeClient, resource: str, *, params: dict[str, Any]
) -> tuple[list[dict], bool]:
    """One page of ``client.v1.<resource>.list``: its objects as plain data and ``has_more``."""
    service = getattr(client.v1, resource)
    page = call_expanding(service.list, params=params)
    return [plain(obj) for obj in page.data], bool(page.has_more)


def _expand_refused(error: stripe.InvalidRequestError) -> bool:
    return error.http_status == 400 and "expand" in str(error.user_message or error).lower()


def call_expanding(fn: Callable[..., T], *args: Any, params: dict[str, Any]) -> T:
    """``fn(*args, params=params)``; if Stripe refuses the ``expand``, again without it."""
    try:
        return stripe_call(fn, *args, params=params or None)
    except stripe.InvalidRequestError as error:
        if "expand" not in params or not _expand_refused(error):
            raise
        return stripe_call(fn, *args, params={k: v for k, v in params.items() if k != "expand"})


def retrieve(
    client: stripe.StripeClient, resource: str, stripe_id: str, **params: Any
) -> dict | None:
    """The current state of one object, or None if Stripe no longer knows it (404)."""
    service = getattr(client.v1, resource)
    try:
        return plain(call_expanding(service.retrieve, stripe_id, params=params))
    except stripe.InvalidRequestError as error:
        if error.http_status == 404:
            return None
        raise


def invoice_lines_all(client: stripe.StripeClient, invoice: dict) -> list[dict]:
    """Every line of ``invoice``: the embedded first page, then the lines endpoint."""
    embedded = invoice.get("lines") or {}
    lines = list(embedded.get("data") or [])
    has_more = bool(embedded.get("has_more"))
    while has_more:
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        if lines:
            params["starting_after"] = lines[-1]["id"]
        page = stripe_call(client.v1.invoices.line_items.list, invoice["id"], params=params)
        batch = [plain(line) for line in page.data]
        lines.extend(batch)
        has_more = bool(page.has_more) and bool(batch)
    return lines


def invoice_retrieve(
    client: stripe.StripeClient, invoice_id: str
) -> tuple[dict, list[dict]] | None:
    """An invoice with all its lines, or None if it was deleted (drafts can be)."""
    invoice = retrieve(client, "invoices", invoice_id, expand=INVOICE_EXPAND)
    if invoice is None:
        return None
    return invoice, invoice_lines_all(client, invoice)


def refunds_of_charge(client: stripe.StripeClient, charge_id: str) -> Iterator[dict]:
    """Every refund of a charge, paging through ``/v1/refunds?charge=…``."""
    params: dict[str, Any] = {"charge": charge_id, "limit": PAGE_SIZE}
    while True:
        batch, has_more = list_page(client, "refunds", params=params)
        yield from batch
        if not (has_more and batch):
            return
        params["starting_after"] = batch[-1]["id"]
