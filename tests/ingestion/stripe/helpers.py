"""Building Stripe histories on the fake and the figures the mirror must reach."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import Sum

from ingestion.fakes.stripe import StripeFake, add_months
from ingestion.models import RevenueLine, RevenueRecognition

BILLED = ("open", "paid", "uncollectible")


def unix(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def expected_totals(fake: StripeFake) -> dict[str, Decimal]:
    """Billed, collected (USD) as Stripe's own objects say, in dollars."""
    invoices = fake.objects["invoice"].values()
    billed = sum(
        line["amount"]
        for invoice in invoices
        if invoice["status"] in BILLED
        for line in fake.invoice_lines[invoice["id"]]
    )
    billed -= sum(
        n["total"] for n in fake.objects["credit_note"].values() if n["status"] == "issued"
    )
    collected = sum(invoice["amount_paid"] for invoice in invoices)
    collected -= sum(
        r["amount"] for r in fake.objects["refund"].values() if r["status"] == "succeeded"
    )
    return {"billed": Decimal(billed) / 100, "collected": Decimal(collected) / 100}


def stored_totals(organization) -> dict[str, Decimal]:
    lines = RevenueLine.objects.filter(organization=organization)
    sums = lines.aggregate(
        billed=Sum("billed"), collected=Sum("collected"), recognized=Sum("recognized")
    )
    sums["recognized_days"] = RevenueRecognition.objects.filter(
        organization=organization
    ).aggregate(total=Sum("amount"))["total"]
    return {key: value or Decimal(0) for key, value in sums.items()}


def monthly_subscription(fake: StripeFake, *, customer: str, price: str, start: int,
                         months: int, pay: bool = True) -> tuple[dict, list[dict]]:  # fmt: skip
    """A subscription billed monthly for ``months`` periods; returns it and its invoices."""
    subscription, _ = fake.add_subscription(customer=customer, price=price, start=start)
    invoices = []
    period_start = datetime.fromtimestamp(start, UTC)
    for _ in range(months):
        period_end = add_months(period_start, 1)
        at = int(period_start.timestamp())
        fake.renew_subscription(subscription["id"], period_start=at)
        invoice, _ = fake.add_invoice(
            customer=customer, subscription=subscription["id"], at=at,
            lines=[{"amount": fake.objects["price"][price]["unit_amount"], "price": price,
                    "period": (at, int(period_end.timestamp()))}],
        )  # fmt: skip
        fake.finalize_invoice(invoice["id"], at=at + 60)
        if pay:
            fake.pay_invoice(invoice["id"], at=at + 120)
        invoices.append(invoice)
        period_start = period_end
    return subscription, invoices
