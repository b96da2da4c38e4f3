"""A stateful fake of the Stripe API (the endpoints Metron reads) on 127.0.0.1.

It speaks the wire format of API version ``2026-10-28.endive`` (stripe 16.x):
subscription periods on the items, invoice-line prices under
``pricing.price_details``, the invoice → subscription link under ``parent``,
payments under ``invoice.payments``. Lists paginate like Stripe (newest first,
``limit`` 1–100, ``starting_after``/``ending_before``, ``has_more``, ``url``,
``object: "list"``); an invoice embeds its first 10 lines and serves the rest at
``/v1/invoices/{id}/lines``. Requests need ``Authorization: Bearer <api_key>``.
Faults come from :meth:`FakeServer.fail_next` (429, 500, …); ``delay`` slows
every answer so a test can kill a client mid-sync.

:func:`start_stripe_fake` fills it deterministically from a seed for given
customers and plans (random upgrades and cancellations);
:func:`start_stripe_fake_from_periods` bills given plan periods instead, so that
the mirror rebuilds exactly those plan histories (the demo). The mutation methods
(``pay_invoice``, ``cancel_subscription``, ``refund_invoice``, …) change objects
and return the webhook events Stripe would send, which :meth:`StripeFake.sign`
signs with the stripe package's own helper.
"""

from __future__ import annotations

import copy
import json
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import stripe

from ingestion.fakes.base import FakeServer, Request, Response
from ingestion.revenue_math import major_to_minor

API_VERSION = "2026-10-28.endive"
DEFAULT_API_KEY = "sk_test_metron_fake"
DEFAULT_WEBHOOK_SECRET = "whsec_metron_fake"
EMBEDDED_LINES = 10
METADATA_KEY = "metron_customer_id"
RESOURCES = {
    "customers": "customer",
    "products": "product",
    "prices": "price",
    "subscriptions": "subscription",
    "invoices": "invoice",
    "credit_notes": "credit_note",
    "refunds": "refund",
    "charges": "charge",
}
PREFIXES = {
    "customer": "cus",
    "product": "prod",
    "price": "price",
    "subscription": "sub",
    "subscription_item": "si",
    "invoice": "in",
    "line_item": "il",
    "credit_note": "cn",
    "credit_note_line_item": "cnli",
    "refund": "re",
    "charge": "ch",
    "payment_intent": "pi",
    "invoice_payment": "inpay",
    "event": "evt",
}


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _unix(value: datetime | date) -> int:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    return int(value.timestamp())


def add_months(value: datetime, months: int) -> datetime:
    """Same day and time ``months`` later, clamped to the month's last day (Stripe's rule)."""
    month = value.month - 1 + months
    year, month = value.year + month // 12, month % 12 + 1
    for day in range(value.day, 27, -1):
        try:
            return value.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return value.replace(year=year, month=month, day=min(value.day, 28))


def _list(data: list[dict], url: str, has_more: bool) -> dict:
    return {"object": "list", "url": url, "has_more": has_more, "data": data}


class StripeFake(FakeServer):
    """Stripe's state for one account, served over HTTP; see the module docstring."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        seed: int = 0,
        now: datetime | None = None,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.seed = seed
        self.rng = random.Random(seed)
        self.delay = 0.0
        self.refuse_expand = False  # answer 400 to any expand[] (accounts that cannot)
        self.now = _unix(now or datetime.now(UTC))
        self.objects: dict[str, dict[str, dict]] = {kind: {} for kind in RESOURCES.values()}
        self.invoice_lines: dict[str, list[dict]] = {}
        self.events: list[dict] = []
        self.prices_by_plan: dict[str, str] = {}
        self._counters: dict[tuple[str, str], int] = {}
        self.id_scope = ""  # set: ids and invoice numbers count within it (one customer's)
        self._sequence = 0
        self._state = threading.RLock()
        self.route("GET", "/v1/", self._handle)

    # --- ids and time ----------------------------------------------------------------

    def _count(self, kind: str) -> int:
        key = (self.id_scope, kind)
        self._counters[key] = self._counters.get(key, 0) + 1
        return self._counters[key]

    def new_id(self, kind: str) -> str:
        """A new id; within an ``id_scope`` it depends only on what the scope holds."""
        number = self._count(kind)
        if self.id_scope:
            return f"{PREFIXES[kind]}_{self.id_scope}x{number:04d}"
        return f"{PREFIXES[kind]}_s{self.seed}x{number:06d}"

    def _stamp(self, obj: dict) -> dict:
        # Creation order for newest-first lists; many objects share a second.
        self._sequence += 1
        obj["_seq"] = self._sequence
        return obj

    def at(self, value: datetime | int | None) -> int:
        if value is None:
            return self.now
        return value if isinstance(value, int) else _unix(value)

    # --- HTTP -----------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        if self.delay:
            time.sleep(self.delay)
        return super().dispatch(request)

    def _error(self, status: int, message: str, code: str = "") -> Response:
        kind = "invalid_request_error" if status < 500 else "api_error"
        return Response(status, {"error": {"type": kind, "code": code, "message": message}})

    def _handle(self, request: Request) -> Response:
        auth = request.headers.get("Authorization") or ""
        if auth != f"Bearer {self.api_key}":
            return self._error(401, "Invalid API Key provided.", "api_key_invalid")
        parts = [p for p in request.path.split("/") if p][1:]  # drop "v1"
        if not parts or parts[0] not in RESOURCES:
            return self._error(404, f"Unrecognized request URL (GET: {request.path}).")
        kind = RESOURCES[parts[0]]
        if self.refuse_expand and any(key.startswith("expand") for key in request.query):
            return self._error(400, "This property cannot be expanded (payments).")
        with self._state:
            if len(parts) == 1:
                return Response(200, self._list_objects(kind, request))
            stripe_id = parts[1]
            if len(parts) == 3 and kind == "invoice" and parts[2] == "lines":
                if stripe_id not in self.invoice_lines:
                    return self._error(404, f"No such invoice: '{stripe_id}'", "resource_missing")
                return Response(
                    200,
                    self._page(
                        [copy.deepcopy(line) for line in self.invoice_lines[stripe_id]],
                        request,
                        f"/v1/invoices/{stripe_id}/lines",
                        newest_first=False,
                    ),
                )
            obj = self.objects[kind].get(stripe_id)
            if obj is None or len(parts) != 2:
                return self._error(404, f"No such {kind}: '{stripe_id}'", "resource_missing")
            expanded = "payments" in self._expand(request)
            return Response(200, self.render(kind, obj, payments=expanded))

    def _list_objects(self, kind: str, request: Request) -> dict:
        objects = list(self.objects[kind].values())
        created = {op: request.param(f"created[{op}]") for op in ("gt", "gte", "lt", "lte")}
        if request.param("created") is not None:
            created["gte"] = created["lte"] = request.param("created")
        for op, value in created.items():
            if value is None:
                continue
            limit = int(value)
            test = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}[op]
            objects = [o for o in objects if test(o["created"], limit)]
        for name in ("customer", "charge", "invoice", "payment_intent"):
            value = request.param(name)
            if value is not None:
                objects = [o for o in objects if o.get(name) == value]
        if kind == "subscription":
            status = request.param("status")
            if status is None:
                objects = [
                    o for o in objects if o["status"] not in ("canceled", "incomplete_expired")
                ]
            elif status != "all":
                objects = [o for o in objects if o["status"] == status]
        if kind == "customer":
            objects = [o for o in objects if not o.get("deleted")]
        expanded = "data.payments" in self._expand(request)
        rendered = [self.render(kind, o, payments=expanded) for o in objects]
        return self._page(
            rendered,
            request,
            f"/v1/{request.path.split('/')[2]}",
            newest_first=True,
            order=[o["_seq"] for o in objects],
        )

    def _page(
        self,
        data: list[dict],
        request: Request,
        url: str,
        *,
        newest_first: bool,
        order: list[int] | None = None,
    ) -> dict:
        if newest_first:
            keyed = sorted(
                zip(order or range(len(data)), data, strict=True),
                key=lambda pair: (pair[1].get("created", 0), pair[0]),
                reverse=True,
            )
            data = [obj for _, obj in keyed]
        limit = max(1, min(int(request.param("limit", "10")), 100))
        ids = [obj["id"] for obj in data]
        after, before = request.param("starting_after"), request.param("ending_before")
        if after is not None:
            start = ids.index(after) + 1 if after in ids else len(ids)
            window = data[start : start + limit]
            has_more = start + limit < len(data)
        elif before is not None:
            end = ids.index(before) if before in ids else 0
            window = data[max(0, end - limit) : end]
            has_more = end - limit > 0
        else:
            window, has_more = data[:limit], len(data) > limit
        return _list(window, url, has_more)

    # --- rendering ---------------------------------------------------------------------

    @staticmethod
    def _expand(request: Request) -> set[str]:
        return {
            v for key, values in request.query.items() if key.startswith("expand") for v in values
        }

    def render(self, kind: str, obj: dict, *, payments: bool = False) -> dict:
        """The object as the API returns it (private bookkeeping keys dropped).

        An invoice's ``payments`` is only there when expanded, as at Stripe."""
        if obj.get("deleted"):
            return {"id": obj["id"], "object": kind, "deleted": True}
        out = {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}
        if kind == "invoice":
            if not payments:
                out.pop("payments", None)
            lines = self.invoice_lines.get(obj["id"], [])
            out["lines"] = {
                "object": "list",
                "url": f"/v1/invoices/{obj['id']}/lines",
                "has_more": len(lines) > EMBEDDED_LINES,
                "total_count": len(lines),
                "data": copy.deepcopy(lines[:EMBEDDED_LINES]),
            }
        if kind == "subscription":
            for item in out["items"]["data"]:
                item["price"] = self.render("price", self.objects["price"][item["price"]])
        if kind == "charge":
            refunds = [
                self.render("refund", r)
                for r in self.objects["refund"].values()
                if r["charge"] == obj["id"]
            ]
            out["refunds"] = _list(refunds, f"/v1/charges/{obj['id']}/refunds", False)
        return out

    # --- catalog -----------------------------------------------------------------------------

    def add_product(self, name: str, *, at: int | None = None) -> dict:
        with self._state:
            product = self._stamp(
                {
                    "id": self.new_id("product"),
                    "object": "product",
                    "name": name,
                    "active": True,
                    "created": self.at(at),
                    "updated": self.at(at),
                    "livemode": False,
                    "metadata": {},
                    "type": "service",
                    "default_price": None,
                }
            )
            self.objects["product"][product["id"]] = product
            return product

    def add_price(
        self,
        *,
        product: str,
        unit_amount: int,
        currency: str = "usd",
        interval: str | None = "month",
        price_id: str | None = None,
        nickname: str = "",
        at: int | None = None,
    ) -> dict:
        with self._state:
            price = self._stamp(
                {
                    "id": price_id or self.new_id("price"),
                    "object": "price",
                    "product": product,
                    "active": True,
                    "currency": currency.lower(),
                    "unit_amount": unit_amount,
                    "unit_amount_decimal": str(unit_amount),
                    "billing_scheme": "per_unit",
                    "type": "recurring" if interval else "one_time",
                    "recurring": {
                        "interval": interval,
                        "interval_count": 1,
                        "usage_type": "licensed",
                        "meter": None,
                    }
                    if interval
                    else None,
                    "nickname": nickname or None,
                    "lookup_key": None,
                    "metadata": {},
                    "created": self.at(at),
                    "livemode": False,
                    "tax_behavior": "unspecified",
                }
            )
            self.objects["price"][price["id"]] = price
            return price

    # --- mutations that Stripe would announce with webhooks ---------------------------------

    def _event(self, type_: str, kind: str, obj: dict, at: int | None = None) -> dict:
        event = {
            "id": self.new_id("event"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.at(at),
            "livemode": False,
            "pending_webhooks": 1,
            "type": type_,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": self.render(kind, obj)},
        }
        self.events.append(event)
        return event

    def add_customer(
        self,
        *,
        name: str,
        email: str = "",
        external_id: str | None = None,
        at: int | None = None,
        metadata: dict | None = None,
        customer_id: str | None = None,
    ) -> tuple[dict, dict]:
        with self._state:
            meta = dict(metadata or {})
            if external_id is not None:
                meta[METADATA_KEY] = external_id
            customer = self._stamp(
                {
                    "id": customer_id or self.new_id("customer"),
                    "object": "customer",
                    "name": name,
                    "email": email or None,
                    "metadata": meta,
                    "created": self.at(at),
                    "currency": None,
                    "balance": 0,
                    "delinquent": False,
                    "livemode": False,
                    "tax_exempt": "none",
                    "test_clock": None,
                }
            )
            self.objects["customer"][customer["id"]] = customer
            return customer, self._event("customer.created", "customer", customer, at)

    def update_customer(self, customer_id: str, *, at: int | None = None, **fields) -> dict:
        with self._state:
            customer = self.objects["customer"][customer_id]
            customer.update(fields)
            return self._event("customer.updated", "customer", customer, at)

    def delete_customer(self, customer_id: str, *, at: int | None = None) -> dict:
        with self._state:
            customer = self.objects["customer"][customer_id]
            event = self._event("customer.deleted", "customer", customer, at)
            customer["deleted"] = True
            return event

    def add_subscription(
        self,
        *,
        customer: str,
        price: str,
        start: int,
        quantity: int = 1,
        status: str = "active",
        anchor: int | None = None,
    ) -> tuple[dict, dict]:
        """A subscription from ``start``, its first period a month long or, with a billing
        cycle ``anchor`` (e.g. the next 1st), ending there (Stripe prorates it)."""
        with self._state:
            price_obj = self.objects["price"][price]
            sub_id = self.new_id("subscription")
            first_end = anchor or _unix(add_months(datetime.fromtimestamp(start, UTC), 1))
            item = {
                "id": self.new_id("subscription_item"),
                "object": "subscription_item",
                "created": start,
                "current_period_start": start,
                "current_period_end": first_end,
                "price": price,
                "quantity": quantity,
                "subscription": sub_id,
                "metadata": {},
                "discounts": [],
                "billing_thresholds": None,
            }
            subscription = self._stamp(
                {
                    "id": sub_id,
                    "object": "subscription",
                    "customer": customer,
                    "status": status,
                    "currency": price_obj["currency"],
                    "created": start,
                    "start_date": start,
                    "billing_cycle_anchor": anchor or start,
                    "cancel_at": None,
                    "cancel_at_period_end": False,
                    "canceled_at": None,
                    "ended_at": None,
                    "trial_start": None,
                    "trial_end": None,
                    "latest_invoice": None,
                    "metadata": {},
                    "discounts": [],
                    "livemode": False,
                    "collection_method": "charge_automatically",
                    "items": _list([item], f"/v1/subscription_items?subscription={sub_id}", False),
                }
            )
            self.objects["subscription"][sub_id] = subscription
            return subscription, self._event(
                "customer.subscription.created", "subscription", subscription, start
            )

    def renew_subscription(self, subscription_id: str, *, period_start: int) -> dict:
        """Move every item to the period starting at ``period_start``."""
        with self._state:
            subscription = self.objects["subscription"][subscription_id]
            end = _unix(add_months(datetime.fromtimestamp(period_start, UTC), 1))
            for item in subscription["items"]["data"]:
                item["current_period_start"], item["current_period_end"] = period_start, end
            return self._event(
                "customer.subscription.updated", "subscription", subscription, period_start
            )

    def change_subscription_price(
        self, subscription_id: str, *, price: str, at: int, period_end: int | None = None
    ) -> dict:
        """Move the first item to ``price`` at ``at``: a new period starts then, a month long
        or up to ``period_end`` (the billing cycle anchor kept)."""
        with self._state:
            subscription = self.objects["subscription"][subscription_id]
            item = subscription["items"]["data"][0]
            item["price"] = price
            item["current_period_start"] = at
            item["current_period_end"] = period_end or _unix(
                add_months(datetime.fromtimestamp(at, UTC), 1)
            )
            return self._event("customer.subscription.updated", "subscription", subscription, at)

    def cancel_subscription(self, subscription_id: str, *, at: int) -> dict:
        with self._state:
            subscription = self.objects["subscription"][subscription_id]
            subscription.update(status="canceled", canceled_at=at, ended_at=at)
            return self._event("customer.subscription.deleted", "subscription", subscription, at)

    def add_invoice(
        self,
        *,
        customer: str,
        lines: Iterable[dict],
        at: int,
        subscription: str | None = None,
        currency: str | None = None,
        legacy_price_shape: bool = False,
        billing_reason: str | None = None,
    ) -> tuple[dict, dict]:
        """A draft invoice. Each line: ``amount`` (minor units), ``price``, ``period``
        ``(start, end)``, optional ``description``, ``quantity``, ``proration``. A negative
        total is due as 0 (Stripe credits the rest to the customer's balance)."""
        with self._state:
            invoice_id = self.new_id("invoice")
            rendered_lines = []
            for spec in lines:
                price = self.objects["price"].get(spec.get("price") or "")
                line_currency = (currency or (price or {}).get("currency") or "usd").lower()
                start, end = spec.get("period", (at, at))
                line = {
                    "id": self.new_id("line_item"),
                    "object": "line_item",
                    "amount": int(spec["amount"]),
                    "currency": line_currency,
                    "description": spec.get("description")
                    or (
                        f"{spec.get('quantity', 1)} × {price['nickname'] or price['id']}"
                        if price
                        else "Charge"
                    ),
                    "invoice": invoice_id,
                    "livemode": False,
                    "metadata": {},
                    "period": {"start": start, "end": end},
                    "quantity": spec.get("quantity", 1),
                    "discount_amounts": [],
                    "taxes": [],
                    "parent": {
                        "type": "subscription_item_details",
                        "subscription_item_details": {
                            "subscription": subscription,
                            "subscription_item": spec.get("subscription_item"),
                            "proration": bool(spec.get("proration", False)),
                            "invoice_item": None,
                        },
                    }
                    if subscription
                    else {
                        "type": "invoice_item_details",
                        "invoice_item_details": {"invoice_item": None},
                    },
                }
                if price is not None:
                    if legacy_price_shape:
                        line["price"] = self.render("price", price)
                    else:
                        line["pricing"] = {
                            "type": "price_details",
                            "price_details": {"price": price["id"], "product": price["product"]},
                            "unit_amount_decimal": price["unit_amount_decimal"],
                        }
                rendered_lines.append(line)
            total = sum(line["amount"] for line in rendered_lines)
            due = max(total, 0)
            first_currency = (
                rendered_lines[0]["currency"] if rendered_lines else (currency or "usd")
            )
            invoice = self._stamp(
                {
                    "id": invoice_id,
                    "object": "invoice",
                    "customer": customer,
                    "status": "draft",
                    "currency": first_currency,
                    "created": at,
                    "period_start": at,
                    "period_end": at,
                    "subtotal": total,
                    "total": total,
                    "total_excluding_tax": total,
                    "amount_due": due,
                    "amount_paid": 0,
                    "amount_remaining": due,
                    "number": None,
                    "billing_reason": billing_reason
                    or ("subscription_cycle" if subscription else "manual"),
                    "livemode": False,
                    "metadata": {},
                    "attempt_count": 0,
                    "collection_method": "charge_automatically",
                    "parent": {
                        "type": "subscription_details",
                        "quote_details": None,
                        "subscription_details": {"subscription": subscription, "metadata": {}},
                    }
                    if subscription
                    else None,
                    "status_transitions": {
                        "finalized_at": None,
                        "paid_at": None,
                        "voided_at": None,
                        "marked_uncollectible_at": None,
                    },
                    "payments": _list([], f"/v1/invoice_payments?invoice={invoice_id}", False),
                }
            )
            self.objects["invoice"][invoice_id] = invoice
            self.invoice_lines[invoice_id] = rendered_lines
            if subscription:
                self.objects["subscription"][subscription]["latest_invoice"] = invoice_id
            return invoice, self._event("invoice.created", "invoice", invoice, at)

    def finalize_invoice(self, invoice_id: str, *, at: int) -> dict:
        with self._state:
            invoice = self.objects["invoice"][invoice_id]
            if self.id_scope:  # numbered per customer, as Stripe does by default
                number = f"{self.id_scope.upper()[:12]}-{self._count('invoice number'):04d}"
            else:
                count = sum(1 for i in self.objects["invoice"].values() if i.get("number")) + 1
                number = f"F{self.seed:02d}-{count:05d}"
            invoice.update(status="open", number=number)
            invoice["status_transitions"]["finalized_at"] = at
            return self._event("invoice.finalized", "invoice", invoice, at)

    def pay_invoice(self, invoice_id: str, *, at: int) -> list[dict]:
        """Pay the invoice in full; one with nothing due is marked paid without a payment."""
        with self._state:
            invoice = self.objects["invoice"][invoice_id]
            if invoice["amount_due"] <= 0:
                invoice.update(status="paid", amount_remaining=0)
                invoice["status_transitions"]["paid_at"] = at
                return [self._event("invoice.paid", "invoice", invoice, at)]
            intent, charge_id = self.new_id("payment_intent"), self.new_id("charge")
            invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
            invoice["status_transitions"]["paid_at"] = at
            invoice["payments"]["data"].append(
                {
                    "id": self.new_id("invoice_payment"),
                    "object": "invoice_payment",
                    "amount_paid": invoice["amount_due"],
                    "amount_requested": invoice["amount_due"],
                    "currency": invoice["currency"],
                    "invoice": invoice_id,
                    "is_default": True,
                    "livemode": False,
                    "status": "paid",
                    "created": at,
                    "payment": {"type": "payment_intent", "payment_intent": intent},
                    "status_transitions": {"paid_at": at, "canceled_at": None},
                }
            )
            self.objects["charge"][charge_id] = self._stamp(
                {
                    "id": charge_id,
                    "object": "charge",
                    "amount": invoice["amount_due"],
                    "amount_captured": invoice["amount_due"],
                    "amount_refunded": 0,
                    "currency": invoice["currency"],
                    "customer": invoice["customer"],
                    "payment_intent": intent,
                    "paid": True,
                    "refunded": False,
                    "status": "succeeded",
                    "created": at,
                    "livemode": False,
                    "metadata": {},
                }
            )
            return [
                self._event("invoice.paid", "invoice", invoice, at),
                self._event("invoice.payment_succeeded", "invoice", invoice, at),
            ]

    def void_invoice(self, invoice_id: str, *, at: int) -> dict:
        with self._state:
            invoice = self.objects["invoice"][invoice_id]
            invoice.update(status="void", amount_remaining=0)
            invoice["status_transitions"]["voided_at"] = at
            return self._event("invoice.voided", "invoice", invoice, at)

    def mark_uncollectible(self, invoice_id: str, *, at: int) -> dict:
        with self._state:
            invoice = self.objects["invoice"][invoice_id]
            invoice["status"] = "uncollectible"
            invoice["status_transitions"]["marked_uncollectible_at"] = at
            return self._event("invoice.marked_uncollectible", "invoice", invoice, at)

    def charge_of_invoice(self, invoice_id: str) -> dict:
        intents = {
            p["payment"]["payment_intent"]
            for p in self.objects["invoice"][invoice_id]["payments"]["data"]
        }
        return next(c for c in self.objects["charge"].values() if c["payment_intent"] in intents)

    def refund_invoice(self, invoice_id: str, *, amount: int, at: int) -> dict:
        """Refund part of the invoice's charge; returns the ``charge.refunded`` event."""
        with self._state:
            charge = self.charge_of_invoice(invoice_id)
            refund = self._stamp(
                {
                    "id": self.new_id("refund"),
                    "object": "refund",
                    "amount": amount,
                    "charge": charge["id"],
                    "currency": charge["currency"],
                    "created": at,
                    "customer": charge["customer"],
                    "payment_intent": charge["payment_intent"],
                    "status": "succeeded",
                    "reason": "requested_by_customer",
                    "metadata": {},
                    "balance_transaction": None,
                    "description": None,
                }
            )
            self.objects["refund"][refund["id"]] = refund
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            return self._event("charge.refunded", "charge", charge, at)

    def add_credit_note(
        self, invoice_id: str, *, amount: int, at: int, line_index: int | None = 0
    ) -> dict:
        """Credit ``amount`` (minor units) against a line of the invoice (or no line)."""
        with self._state:
            invoice = self.objects["invoice"][invoice_id]
            lines = self.invoice_lines[invoice_id]
            line = lines[line_index] if line_index is not None else None
            credit_note_id = self.new_id("credit_note")
            note = self._stamp(
                {
                    "id": credit_note_id,
                    "object": "credit_note",
                    "invoice": invoice_id,
                    "customer": invoice["customer"],
                    "status": "issued",
                    "type": "post_payment" if invoice["status"] == "paid" else "pre_payment",
                    "currency": invoice["currency"],
                    "created": at,
                    "effective_at": at,
                    "amount": amount,
                    "subtotal": amount,
                    "total": amount,
                    "voided_at": None,
                    "number": f"{invoice.get('number') or invoice_id}-CN",
                    "reason": "order_change",
                    "livemode": False,
                    "metadata": {},
                    "memo": None,
                    "lines": _list(
                        [
                            {
                                "id": self.new_id("credit_note_line_item"),
                                "object": "credit_note_line_item",
                                "amount": amount,
                                "description": f"Credit for {line['description']}"
                                if line
                                else "Credit",
                                "invoice_line_item": line["id"] if line else None,
                                "type": "invoice_line_item" if line else "custom_line_item",
                                "quantity": 1,
                                "discount_amount": 0,
                                "livemode": False,
                                "metadata": {},
                            }
                        ],
                        f"/v1/credit_notes/{credit_note_id}/lines",
                        False,
                    ),
                }
            )
            self.objects["credit_note"][credit_note_id] = note
            return self._event("credit_note.created", "credit_note", note, at)

    # --- webhooks ---------------------------------------------------------------------------

    def sign(
        self, event: dict | str | bytes, *, secret: str | None = None, timestamp: int | None = None
    ) -> tuple[bytes, str]:
        """The body and ``Stripe-Signature`` header of a delivery of ``event``."""
        if isinstance(event, bytes):
            payload = event.decode()
        elif isinstance(event, str):
            payload = event
        else:
            payload = json.dumps(event, separators=(",", ":"))
        header = stripe.WebhookSignature.generate_signature_header(
            payload,
            secret or self.webhook_secret,
            timestamp=int(time.time()) if timestamp is None else timestamp,
        )
        return payload.encode(), header

    # --- totals, for tests and the demo ---------------------------------------------------------

    def count(self, kind: str) -> int:
        objects = self.objects[kind].values()
        if kind == "customer":
            return sum(1 for o in objects if not o.get("deleted"))
        return len(self.objects[kind])

    def requests_to(self, path_prefix: str) -> int:
        return sum(1 for r in self.requests if r.path.startswith(path_prefix))

    def listed(self, kind: str) -> list[tuple[dict, list[dict] | None]]:
        """Every object of ``kind`` as a backfill receives it, without HTTP: the JSON of its
        list entry (subscriptions of every status, invoices with ``payments`` expanded) and,
        for an invoice, all its lines."""
        with self._state:
            objects = [o for o in self.objects[kind].values() if not o.get("deleted")]
            listed = []
            for obj in objects:
                data = json.loads(json.dumps(self.render(kind, obj, payments=True), default=str))
                lines = None
                if kind == "invoice":
                    lines = json.loads(json.dumps(self.invoice_lines[obj["id"]], default=str))
                listed.append((data, lines))
            return listed


def _plan_price_minor(plan: Any) -> tuple[int, str]:
    currency = str(_get(plan, "currency", "USD")).upper()
    return major_to_minor(Decimal(str(_get(plan, "price", "0"))), currency), currency.lower()


def start_stripe_fake(
    *,
    customers: Iterable[Any],
    plans: Iterable[Any],
    months: int,
    seed: int,
    start: date | None = None,
    api_key: str = DEFAULT_API_KEY,
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
    unmatched: int = 1,
) -> StripeFake:
    """Start a fake Stripe holding ``months`` of billing history for ``customers``.

    ``customers``: objects or dicts with ``external_id`` and ``name`` (and optionally
    ``plan``, a plan code). ``plans``: with ``code``, ``name``, ``price`` (major units),
    ``currency``, ``interval`` and optionally ``stripe_price_ids`` (the first one is
    used as the price id, so the mirror maps prices back to the plans). The same seed
    gives the same objects, ids and amounts. ``start`` defaults to the first day of
    the month ``months`` months ago; the fake's clock stands at ``start + months``.
    Also adds ``unmatched`` Stripe customers that carry no Metron id.
    """
    if start is None:
        today = datetime.now(UTC).date().replace(day=1)
        start = add_months(datetime(today.year, today.month, 1, tzinfo=UTC), -months).date()
    begin = datetime(start.year, start.month, start.day, tzinfo=UTC)
    end = add_months(begin, months)
    fake = StripeFake(api_key=api_key, webhook_secret=webhook_secret, seed=seed, now=end)
    rng = fake.rng

    price_of: dict[str, str] = {}
    plan_list = [p for p in plans if not _get(p, "is_trial", False)]
    for plan in plan_list:
        code = str(_get(plan, "code"))
        amount, currency = _plan_price_minor(plan)
        product = fake.add_product(str(_get(plan, "name", code)), at=_unix(begin) - 86400 * 30)
        ids = list(_get(plan, "stripe_price_ids", []) or [])
        interval = "year" if _get(plan, "interval", "month") == "year" else "month"
        price = fake.add_price(
            product=product["id"],
            unit_amount=amount,
            currency=currency,
            interval=interval,
            price_id=ids[0] if ids else f"price_{code}",
            nickname=str(_get(plan, "name", code)),
            at=_unix(begin) - 86400 * 30,
        )
        price_of[code] = price["id"]
    fake.prices_by_plan = dict(price_of)
    paid = [str(_get(p, "code")) for p in plan_list if not _get(p, "is_free", False)] or list(
        price_of
    )

    people = [
        (str(_get(c, "external_id")), str(_get(c, "name", "")), _get(c, "plan")) for c in customers
    ]
    people += [(None, f"Stripe-only customer {i + 1}", None) for i in range(unmatched)]
    for index, (external_id, name, plan) in enumerate(people):
        plan_code = plan if isinstance(plan, str) or plan is None else _get(plan, "code")
        code = plan_code if plan_code in price_of else rng.choice(paid)
        signup = begin + timedelta(days=rng.randint(0, 27), hours=rng.randint(0, 23))
        customer, _ = fake.add_customer(
            name=name or external_id or f"Customer {index}",
            external_id=external_id,
            email=f"billing+{index}@example.com",
            at=_unix(signup) - 3600,
        )
        _history(fake, rng, customer["id"], price_of, code, paid, signup, end)
    fake.events.clear()  # history is for the backfill; tests record their own events
    return fake.start()


def _history(
    fake: StripeFake,
    rng: random.Random,
    customer: str,
    price_of: dict[str, str],
    code: str,
    paid: list[str],
    signup: datetime,
    end: datetime,
) -> None:
    """Monthly (or yearly) periods from ``signup`` until ``end``: invoices, payments,
    an upgrade, a cancellation, refunds and credit notes, all drawn from ``rng``."""
    price = price_of[code]
    subscription, _ = fake.add_subscription(customer=customer, price=price, start=_unix(signup))
    step = 12 if fake.objects["price"][price]["recurring"]["interval"] == "year" else 1
    upgrade_at = rng.randint(2, 6) if rng.random() < 0.25 else None
    cancel_after = rng.randint(2, 8) if rng.random() < 0.15 else None
    period = 0
    period_start = signup
    while period_start < end:
        if upgrade_at is not None and period == upgrade_at and len(paid) > 1:
            better = [c for c in paid if c != code]
            code = better[rng.randrange(len(better))]
            price = price_of[code]
            fake.change_subscription_price(subscription["id"], price=price, at=_unix(period_start))
        period_end = add_months(period_start, step)
        fake.renew_subscription(subscription["id"], period_start=_unix(period_start))
        amount = fake.objects["price"][price]["unit_amount"]
        created = _unix(period_start)
        invoice, _ = fake.add_invoice(
            customer=customer,
            subscription=subscription["id"],
            at=created,
            lines=[
                {
                    "amount": amount,
                    "price": price,
                    "period": (created, _unix(period_end)),
                    "subscription_item": subscription["items"]["data"][0]["id"],
                }
            ],
        )
        fake.finalize_invoice(invoice["id"], at=created + 3600)
        last = add_months(period_start, step) >= end
        draw = rng.random()
        still_open = last and draw < 0.3  # the newest invoice may be unpaid when history ends
        if draw < 0.03 and not last:
            fake.void_invoice(invoice["id"], at=created + 7200)
        elif not still_open:
            fake.pay_invoice(invoice["id"], at=created + 7200)
            if amount and rng.random() < 0.05:
                fake.refund_invoice(invoice["id"], amount=amount // 2, at=created + 86400 * 3)
            if amount and rng.random() < 0.04:
                fake.add_credit_note(invoice["id"], amount=amount // 4, at=created + 86400 * 2)
        period += 1
        if cancel_after is not None and period >= cancel_after:
            fake.cancel_subscription(subscription["id"], at=_unix(period_end))
            return
        period_start = period_end


# --- a fake that follows given plan histories -------------------------------------------------

HOUR, DAY = 3600, 86400
FINALIZED_AFTER, PAID_AFTER = HOUR, 2 * HOUR  # after the draft, as Stripe's automatic collection
LATE_PAID_AFTER = 30 * DAY  # net-30 bank transfer: the invoice stays open until then
REFUND_AFTER, CREDIT_AFTER = 3 * DAY, 2 * DAY  # after the payment


@dataclass(frozen=True)
class BillingPeriod:
    """One plan on a customer's subscription over ``[start, end)``; ``end`` None while open."""

    plan: str  # plan code
    start: datetime
    end: datetime | None = None
    price_id: str = ""  # one of the plan's Stripe prices; default its first


@dataclass(frozen=True)
class BillingCustomer:
    """A Stripe customer whose one subscription follows back-to-back ``periods``."""

    stripe_id: str
    name: str
    periods: tuple[BillingPeriod, ...]
    external_id: str | None = None  # Metron's id, in the metadata; None: known to Stripe only
    email: str = ""


@dataclass(frozen=True)
class BillingShares:
    """Shares of invoices (with something due) paid late, half refunded, a quarter credited."""

    late: float = 0.05
    refunded: float = 0.01
    credited: float = 0.01


def _month_start(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _prorated(amount: int, start: datetime, end: datetime) -> int:
    """``amount`` (minor units, ≥ 0) for ``[start, end)`` within one calendar month, half up."""
    month = _month_start(start)
    part, whole = _unix(end) - _unix(start), _unix(add_months(month, 1)) - _unix(month)
    return (2 * amount * part + whole) // (2 * whole)


class _Biller:
    """One customer's Stripe history planned as timed steps, run later in global time order.

    Billing is anchored on the 1st (UTC). A step refers to objects that earlier steps made
    through ``ids``, filled as the steps run.
    """

    def __init__(
        self, fake: StripeFake, customer: BillingCustomer, catalog: dict[str, dict], *,
        seed: int, shares: BillingShares,
    ) -> None:  # fmt: skip
        self.fake, self.customer, self.catalog = fake, customer, catalog
        self.seed, self.shares = seed, shares
        self.steps: list[tuple[int, Callable[[], Any]]] = []
        self.ids: dict[str, str] = {}
        self.dating: list[str] = []  # keys of the invoices that date plan changes

    def at(self, when: datetime | int, action: Callable[[], Any]) -> None:
        self.steps.append((when if isinstance(when, int) else _unix(when), action))

    def price(self, period: BillingPeriod) -> tuple[str, int]:
        """The period's Stripe price id and the plan's amount (minor units)."""
        plan = self.catalog[period.plan]
        price_id = period.price_id or plan["price_ids"][0]
        if price_id not in plan["price_ids"]:
            raise ValueError(f"{price_id!r} is not a Stripe price of plan {period.plan!r}.")
        return price_id, plan["amount"]

    def plan(self, until: datetime) -> None:
        """Every step from the customer's creation to ``until`` (renewals stop there)."""
        customer, fake = self.customer, self.fake
        periods = customer.periods
        for period, following in zip(periods, periods[1:], strict=False):
            if period.end != following.start:
                raise ValueError(f"{customer.stripe_id}: plan periods must be back to back.")
        for period in periods:
            if period.end is not None and period.end <= period.start:
                raise ValueError(f"{customer.stripe_id}: a plan period ends before it starts.")
            if self.catalog[period.plan]["interval"] != "month":
                raise ValueError(f"{customer.stripe_id}: only monthly plans are billed here.")
        start = periods[0].start
        self.at(_unix(start) - HOUR, lambda: fake.add_customer(
            name=customer.name, email=customer.email, external_id=customer.external_id,
            at=_unix(start) - HOUR, customer_id=customer.stripe_id,
        ))  # fmt: skip
        self.at(start, lambda: self._subscribe(periods[0]))
        for index, period in enumerate(periods):
            self._change(periods[index - 1] if index else None, period)
            if index or len(periods) > 1:
                # The mirror dates each plan change by the invoice of its first day (and
                # needs one invoice of the first plan, whenever that ended).
                self.dating.append(f"in@{_unix(period.start)}")
            month = add_months(_month_start(period.start), 1)
            while month <= until and (period.end is None or month < period.end):
                self._renew(period, month)
                month = add_months(month, 1)
        end = periods[-1].end
        if end is not None:
            self.at(end, lambda: fake.cancel_subscription(self.ids["sub"], at=_unix(end)))

    def _subscribe(self, period: BillingPeriod) -> None:
        subscription, _ = self.fake.add_subscription(
            customer=self.customer.stripe_id, price=self.price(period)[0],
            start=_unix(period.start), anchor=_unix(add_months(_month_start(period.start), 1)),
        )  # fmt: skip
        self.ids["sub"] = subscription["id"]
        self.ids["item"] = subscription["items"]["data"][0]["id"]

    def _change(self, old: BillingPeriod | None, new: BillingPeriod) -> None:
        """Start ``new``: bill up to the next 1st at once, less the unused part of ``old``."""
        at = new.start
        end = add_months(_month_start(at), 1)
        price, amount = self.price(new)
        on_first = at == _month_start(at)
        if old is not None:
            self.at(at, lambda: self.fake.change_subscription_price(
                self.ids["sub"], price=price, at=_unix(at), period_end=_unix(end)
            ))  # fmt: skip
        lines = []
        old_price, old_amount = self.price(old) if old is not None else ("", 0)
        if old_amount and not on_first:
            name = self.catalog[old.plan]["name"]
            lines.append((old_price, -_prorated(old_amount, at, end), at, end, True,
                          f"Unused time on {name} after {at:%d %b %Y}"))  # fmt: skip
        if old is None or on_first:  # a first or a whole month: a plain line
            text, proration = "", False
        else:
            name = self.catalog[new.plan]["name"]
            text, proration = f"Remaining time on {name} after {at:%d %b %Y}", True
        lines.append((price, _prorated(amount, at, end), at, end, proration, text))
        if old is None:
            reason = "subscription_create"
        else:
            reason = "subscription_cycle" if on_first else "subscription_update"
        self._invoice(at, lines, reason)

    def _renew(self, period: BillingPeriod, month: datetime) -> None:
        price, amount = self.price(period)
        self.at(month, lambda: self.fake.renew_subscription(
            self.ids["sub"], period_start=_unix(month)
        ))  # fmt: skip
        end = add_months(month, 1)
        self._invoice(month, [(price, amount, month, end, False, "")], "subscription_cycle")

    def _invoice(self, at: datetime, lines: list[tuple], reason: str) -> None:
        """Draft, finalize and settle an invoice. ``lines``: (price, amount, start, end,
        proration, description). Its fate is drawn from its own seed, whatever else the
        customer holds, so a history grows without changing its past."""
        fake, key, created = self.fake, f"in@{_unix(at)}", _unix(at)

        def draft() -> None:
            invoice, _ = fake.add_invoice(
                customer=self.customer.stripe_id, subscription=self.ids["sub"], at=created,
                billing_reason=reason,
                lines=[
                    {"amount": amount, "price": price, "period": (_unix(start), _unix(end)),
                     "subscription_item": self.ids["item"], "proration": proration,
                     **({"description": text} if text else {})}
                    for price, amount, start, end, proration, text in lines
                ],
            )  # fmt: skip
            self.ids[key] = invoice["id"]

        self.at(created, draft)
        finalized = created + FINALIZED_AFTER
        self.at(finalized, lambda: fake.finalize_invoice(self.ids[key], at=finalized))
        rng = random.Random(f"{self.seed}:{self.customer.stripe_id}:{created}")
        late, refunded, credited = rng.random(), rng.random(), rng.random()
        due = max(sum(line[1] for line in lines), 0)
        paid = created + (LATE_PAID_AFTER if due and late < self.shares.late else PAID_AFTER)
        self.at(paid, lambda: fake.pay_invoice(self.ids[key], at=paid))
        if due and refunded < self.shares.refunded:
            refund_at = paid + REFUND_AFTER
            self.at(refund_at, lambda: fake.refund_invoice(
                self.ids[key], amount=due // 2, at=refund_at
            ))  # fmt: skip
        if due and credited < self.shares.credited:
            index = next(i for i, line in enumerate(lines) if line[1] > 0)
            credit_at = paid + CREDIT_AFTER
            self.at(credit_at, lambda: fake.add_credit_note(
                self.ids[key], amount=lines[index][1] // 4, at=credit_at, line_index=index
            ))  # fmt: skip


def start_stripe_fake_from_periods(
    *,
    plans: Iterable[Any],
    customers: Iterable[BillingCustomer],
    now: datetime,
    seed: int,
    shares: BillingShares = BillingShares(),
    invoices_since: datetime | None = None,
    api_key: str = DEFAULT_API_KEY,
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
) -> StripeFake:
    """Start a fake Stripe as it stands at ``now`` for customers with given plan periods.

    ``plans``: objects or dicts with ``code``, ``name``, ``price`` (major units, per
    month), ``currency``, ``interval`` and ``stripe_price_ids`` (each becomes a price of
    the plan's product, so the mirror maps them back). Each customer gets its Stripe id,
    Metron's id in the metadata and one subscription that changes price exactly where its
    periods change plan and is cancelled where they end (a $0 price for a free plan).

    Billing is monthly on the 1st (UTC): the first invoice is prorated up to the next 1st; a
    change mid-month invoices at once the remaining time on the new price less the unused
    time on the old one; a cancellation is not prorated. Invoices are finalized an hour after
    the draft and paid an hour later, or after 30 days for ``shares.late`` of them (open until
    then); ``shares.refunded`` of them are half refunded, ``shares.credited`` get a credit note
    for a quarter of a line.

    Steps run in time order, only those up to ``now`` happen, and ids count per customer
    (``cus_X`` has ``sub_Xx0001``, ``in_Xx0001``, …): ids are stable as ``now`` moves on or
    customers are added, a later fake holds the same objects and newer ones. With
    ``invoices_since``, the whole history is built, then the invoices before it are dropped
    (with their payments, refunds and credit notes) but for those the mirror dates plan
    changes by: for a customer who changed plans, the first invoice of each plan. So a long
    history stays cheap to mirror, and a later ``invoices_since`` renames nothing either.
    """
    customers = list(customers)
    fake = StripeFake(api_key=api_key, webhook_secret=webhook_secret, seed=seed, now=now)
    first = min((c.periods[0].start for c in customers if c.periods), default=now)
    catalog_at = _unix(_month_start(first)) - 30 * DAY
    catalog: dict[str, dict] = {}
    for plan in plans:
        code = str(_get(plan, "code"))
        name = str(_get(plan, "name", code))
        amount, currency = _plan_price_minor(plan)
        interval = "year" if _get(plan, "interval", "month") == "year" else "month"
        price_ids = [str(p) for p in _get(plan, "stripe_price_ids", []) or []] or [f"price_{code}"]
        fake.id_scope = "".join(ch for ch in code if ch.isalnum())
        product = fake.add_product(name, at=catalog_at)
        for price_id in price_ids:
            fake.add_price(
                product=product["id"], unit_amount=amount, currency=currency, interval=interval,
                price_id=price_id, nickname=name, at=catalog_at,
            )  # fmt: skip
        catalog[code] = {"name": name, "amount": amount, "interval": interval,
                         "price_ids": price_ids}  # fmt: skip
    fake.prices_by_plan = {code: entry["price_ids"][0] for code, entry in catalog.items()}

    steps: list[tuple[int, int, int, Callable[[], Any]]] = []
    billers = []
    for index, customer in enumerate(customers):
        biller = _Biller(fake, customer, catalog, seed=seed, shares=shares)
        billers.append(biller)
        if customer.periods:
            biller.plan(now)
        steps.extend((at, index, order, step) for order, (at, step) in enumerate(biller.steps))
    clock = _unix(now)
    for at, index, _, step in sorted(steps, key=lambda s: s[:3]):
        if at <= clock:
            # Each customer's objects get ids of their own: adding a customer renames nothing.
            fake.id_scope = customers[index].stripe_id.removeprefix("cus_")
            step()
    fake.id_scope = ""
    fake.events.clear()  # history is for the backfill
    if invoices_since is not None:
        dating = {b.ids[key] for b in billers for key in b.dating if key in b.ids}
        _drop_invoices(fake, before=_unix(invoices_since), keep=dating)
    return fake.start()


def _drop_invoices(fake: StripeFake, *, before: int, keep: set[str]) -> None:
    """Forget the invoices created before ``before`` but those in ``keep``, with their
    charges, refunds and credit notes; what stays keeps its id."""
    dropped = {
        invoice_id
        for invoice_id, invoice in fake.objects["invoice"].items()
        if invoice["created"] < before and invoice_id not in keep
    }
    intents = {
        payment["payment"]["payment_intent"]
        for invoice_id in dropped
        for payment in fake.objects["invoice"][invoice_id]["payments"]["data"]
    }
    charges = {c["id"] for c in fake.objects["charge"].values() if c["payment_intent"] in intents}
    objects = fake.objects
    for invoice_id in dropped:
        del objects["invoice"][invoice_id], fake.invoice_lines[invoice_id]
    objects["charge"] = {k: c for k, c in objects["charge"].items() if k not in charges}
    objects["refund"] = {k: r for k, r in objects["refund"].items() if r["charge"] not in charges}
    objects["credit_note"] = {
        k: n for k, n in objects["credit_note"].items() if n["invoice"] not in dropped
    }
