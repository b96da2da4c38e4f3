"""Demo revenue: Stripe billing mirrored through the real backfill, plus an offline contract.

A local Stripe fake bills what Metron holds for the demo's paying customers: each one that
has a Stripe id and ever had a paid plan (internal accounts are not billed) gets a Stripe
customer carrying its id in the metadata and one subscription that changes price exactly
where its plan history changes plan and is cancelled where the history ends; a Free period
before an upgrade is a $0 price on the same subscription. The backfill rebuilds matched
customers' plan histories from their subscriptions, so they must tell the whole history.
Invoices start with the month the usage window starts in, but for the earlier ones that
date plan changes. A few are paid late (open until then), refunded or credited, and one
Stripe-only customer fills the unmatched queue.

The connection runs the backfill of ``manage.py sync_stripe`` (mirror, revenue lines, plan
histories) and is disabled again, pointing at Stripe, so scheduled syncs don't call a fake
that is gone; an ops person enters a real key to sync. An offline Enterprise contract is
entered through the service behind ``POST /api/v1/revenue/``.

Re-runnable: the fake is Stripe as it stands at 02:00 UTC today and its ids never change,
so a second run on the same day finds the mirror current and writes nothing; a later run
mirrors the newer invoices and the payments of open ones, by Stripe id, and keeps the
older ones mirrored before.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise
from time import monotonic

from django.conf import settings
from django.utils import timezone

from accounts.demo import NAMED_CUSTOMERS, PRO, STARTER
from accounts.models import Customer, CustomerPlan, Organization, Plan
from ingestion.demo.usage import DAYS
from ingestion.fakes.stripe import (
    BillingCustomer,
    BillingPeriod,
    BillingShares,
    StripeFake,
    start_stripe_fake_from_periods,
)
from ingestion.models import (
    ManualRevenueEntry,
    RevenueLine,
    StripeConnection,
    StripeCreditNote,
    StripeCustomer,
    StripeInvoice,
    StripePrice,
    StripeProduct,
    StripeRefund,
    StripeSubscription,
    SyncRun,
    UnmatchedStripeCustomer,
)
from ingestion.models.stripe import DEFAULT_API_BASE
from ingestion.revenue_math import month_start
from ingestion.revenue_selectors import revenue_by_customer_period
from ingestion.services.revenue import manual_revenue_entry_create, manual_revenue_entry_save
from ingestion.services.stripe import mirror
from ingestion.services.stripe.backfill import stripe_backfill_execute, stripe_backfill_start
from ingestion.services.stripe.connection import stripe_connection_set
from metron.money import quantize_money

SEED = 20261104
# A few of some 600 invoices in the window: refunds and credit notes are there on any day.
SHARES = BillingShares(late=0.05, refunded=0.02, credited=0.02)
# Stripe as it stands at this time of today (UTC), once the 1st's invoices are finalized
# (01:00) and paid (02:00): every run on one day sees the same account.
AS_OF = time(2)
STATUS_MESSAGE = (
    "Demo: mirrored from local fixtures, then disabled. Enter a real API key and webhook "
    "secret and set the status to Active to sync."
)
NAMED = frozenset(spec.external_id for spec in NAMED_CUSTOMERS)  # billed at every scale
# Signed up through Stripe Checkout and never provisioned in Metron: the unmatched queue.
STRIPE_ONLY = BillingCustomer(
    stripe_id="cus_DemoLarkspurFt",
    name="Larkspur Freight",
    email="billing@larkspur-freight.example.com",
    periods=(BillingPeriod(STARTER, datetime(2026, 8, 14, tzinfo=UTC)),),
)
LEGACY_PRO_PRICE = "price_demo_pro_2025"  # Pro subscriptions started before 2026 keep it
LEGACY_PRO_UNTIL = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ManualEntrySpec:
    customer: str  # external id
    period_start: date
    period_end: date  # exclusive
    amount: Decimal  # USD
    description: str  # with the customer, what identifies the entry on a re-run


# Northwind AI's EU data residency is a yearly contract paid by wire, outside Stripe.
MANUAL_ENTRIES = (
    ManualEntrySpec(
        "northwind-ai", date(2025, 8, 18), date(2026, 8, 18), Decimal("18000.00"),
        "EU data residency, year 1 (offline contract, paid by wire)",
    ),
    ManualEntrySpec(
        "northwind-ai", date(2026, 8, 18), date(2027, 8, 18), Decimal("21600.00"),
        "EU data residency, year 2 (offline contract, paid by wire)",
    ),
)  # fmt: skip

MIRROR = {  # fake object kind → mirror model
    "customer": StripeCustomer,
    "product": StripeProduct,
    "price": StripePrice,
    "subscription": StripeSubscription,
    "invoice": StripeInvoice,
    "credit_note": StripeCreditNote,
    "refund": StripeRefund,
}


@dataclass
class RevenueSeedSummary:
    """What ``demo_seed`` did and what the organization's revenue holds afterwards."""

    sync: str = ""
    matched: int = 0
    unmatched: int = 0
    lines: int = 0
    manual: Counter = field(default_factory=Counter)
    month: date | None = None
    recognized: Decimal = Decimal(0)  # reporting currency (USD), the last full month
    seconds: float = 0.0

    def __str__(self) -> str:
        manual = ", ".join(f"{n} {outcome}" for outcome, n in sorted(self.manual.items()))
        return (
            f"stripe from fixtures: {self.sync}; {self.matched} customers matched, "
            f"{self.unmatched} unmatched; {self.lines:,} revenue lines; manual entries "
            f"({manual}); recognized revenue {self.month:%B %Y} ${self.recognized:,.2f}; "
            f"{self.seconds:.1f} s"
        )


def _sampled(external_id: str, scale: float) -> bool:
    digest = hashlib.sha256(f"{SEED}:{external_id}".encode()).digest()
    return external_id in NAMED or int.from_bytes(digest[:4]) < scale * 2**32


def billing_customers(*, organization: Organization, scale: float = 1.0) -> list[BillingCustomer]:
    """The organization's customers as Stripe bills them: those with a Stripe id, not
    internal, that ever had a paid plan, with their whole plan history (three queries).
    With ``scale`` below 1, only the named accounts and that share of the others.

    A history the fake cannot bill (a gap, a yearly plan: made by hand) is left out."""
    plans = {plan.pk: plan for plan in Plan.objects.filter(organization=organization)}
    periods: dict[int, list[tuple[int, datetime, datetime | None]]] = defaultdict(list)
    for customer_id, plan_id, valid_from, valid_to in (
        CustomerPlan.objects.filter(organization=organization)
        .order_by("customer_id", "valid_from")
        .values_list("customer_id", "plan_id", "valid_from", "valid_to")
    ):
        periods[customer_id].append((plan_id, valid_from, valid_to))
    customers = []
    for customer in (
        Customer.objects.filter(organization=organization, is_internal=False)
        .exclude(stripe_customer_id="")
        .order_by("external_id")
    ):
        rows = periods.get(customer.pk, [])
        if all(plans[plan_id].is_free for plan_id, _, _ in rows):
            continue
        back_to_back = all(end == start for (_, _, end), (_, start, _) in pairwise(rows))
        monthly = all(plans[plan_id].interval == Plan.Interval.MONTH for plan_id, _, _ in rows)
        if not (back_to_back and monthly):
            continue
        if scale < 1 and not _sampled(customer.external_id, scale):
            continue
        customers.append(
            BillingCustomer(
                stripe_id=customer.stripe_customer_id,
                name=customer.name,
                external_id=customer.external_id,
                email=f"billing@{customer.external_id}.example.com",
                periods=tuple(
                    BillingPeriod(plans[plan_id].code, start, end, _price_id(plans[plan_id], start))
                    for plan_id, start, end in rows
                ),
            )
        )
    return customers


def _price_id(plan: Plan, start: datetime) -> str:
    if plan.code == PRO and start < LEGACY_PRO_UNTIL and LEGACY_PRO_PRICE in plan.stripe_price_ids:
        return LEGACY_PRO_PRICE
    return ""  # the plan's current price


def billed_since(today: date) -> datetime:
    """The first day whose invoices the fake keeps: the 1st of the month the usage window
    (the ``DAYS`` days before today) starts in."""
    return datetime.combine(month_start(today - timedelta(days=DAYS)), time.min, tzinfo=UTC)


def demo_seed(
    *, organization: Organization, scale: float | None = None, now: datetime | None = None
) -> RevenueSeedSummary:
    """Mirror the demo's Stripe billing from a fake, then add the offline contract.

    ``scale`` below 1 bills only the named accounts and that share of the other paying
    customers; without it, the setting ``METRON_DEMO_USAGE_SCALE`` (default 1) applies,
    as for usage, so that tests running ``seed_demo`` stay fast.
    """
    started = monotonic()
    if scale is None:
        scale = getattr(settings, "METRON_DEMO_USAGE_SCALE", 1.0)
    today = (now or timezone.now()).astimezone(UTC).date()
    summary = RevenueSeedSummary()
    fake = start_stripe_fake_from_periods(
        plans=Plan.objects.filter(organization=organization).order_by("code"),
        customers=[*billing_customers(organization=organization, scale=scale), STRIPE_ONLY],
        now=datetime.combine(today, AS_OF, tzinfo=UTC),
        seed=SEED,
        shares=SHARES,
        invoices_since=billed_since(today),
    )
    try:
        if _mirror_holds(organization, fake):
            summary.sync = "mirror already current"
        else:
            summary.sync = _backfill(organization, fake)
    finally:
        fake.stop()
    for spec in MANUAL_ENTRIES:
        summary.manual[_manual_entry(organization, spec)] += 1

    stripe_customers = StripeCustomer.objects.filter(organization=organization, deleted=False)
    summary.matched = stripe_customers.filter(customer__isnull=False).count()
    summary.unmatched = UnmatchedStripeCustomer.objects.filter(organization=organization).count()
    summary.lines = RevenueLine.objects.filter(organization=organization).count()
    this_month = today.replace(day=1)
    summary.month = month_start(this_month - timedelta(days=1))
    totals = revenue_by_customer_period(
        organization=organization, measure="recognized", start=summary.month, end=this_month
    )
    summary.recognized = quantize_money(
        sum(totals.values(), Decimal(0)), organization.reporting_currency
    )
    summary.seconds = monotonic() - started
    return summary


def _mirror_holds(organization: Organization, fake: StripeFake) -> bool:
    """Whether a backfill from the fake would change nothing: none is unfinished and the
    mirror holds every object of the fake as fetched (by the mirror's content hash). It may
    hold more: older invoices, mirrored when the usage window started earlier."""
    unfinished = SyncRun.objects.filter(
        organization=organization, kind=SyncRun.Kind.STRIPE_BACKFILL
    ).exclude(status=SyncRun.Status.SUCCEEDED)
    if unfinished.exists():
        return False
    for kind, model in MIRROR.items():
        stored = dict(
            model.objects.filter(organization=organization).values_list("stripe_id", "content_hash")
        )
        for data, lines in fake.listed(kind):
            if stored.get(data["id"]) != mirror.content_hash(data, lines):
                return False
    return True


def _backfill(organization: Organization, fake: StripeFake) -> str:
    """Connect to the fake, run the backfill of ``sync_stripe``, disable the connection."""
    stripe_connection_set(
        organization=organization, api_key=fake.api_key, webhook_secret=fake.webhook_secret,
        api_base=fake.url, status=StripeConnection.Status.ACTIVE,
    )  # fmt: skip
    connection = StripeConnection.objects.filter(organization=organization)
    try:
        run = stripe_backfill_start(organization=organization)
        finished = stripe_backfill_execute(run_id=run.pk)
    except BaseException:
        # The run recorded the error; the connection must not point at the fake either way.
        connection.update(status=StripeConnection.Status.DISABLED, api_base=DEFAULT_API_BASE)
        raise
    connection.update(
        status=StripeConnection.Status.DISABLED, api_base=DEFAULT_API_BASE,
        last_error=STATUS_MESSAGE,
    )  # fmt: skip
    if finished is None:
        return f"backfill run #{run.pk} is held by another process"
    return f"backfill run #{finished.pk} {finished.status} ({finished.items:,} objects)"


def _manual_entry(organization: Organization, spec: ManualEntrySpec) -> str:
    """Create or restore one manual entry (keyed by customer and description)."""
    customer = Customer.objects.filter(organization=organization, external_id=spec.customer)
    customer = customer.first()
    if customer is None:
        return "skipped"
    entry = ManualRevenueEntry.objects.filter(
        organization=organization, customer=customer, description=spec.description
    ).first()
    if entry is None:
        manual_revenue_entry_create(
            organization=organization, customer=customer, period_start=spec.period_start,
            period_end=spec.period_end, amount=spec.amount, currency="USD",
            description=spec.description,
        )  # fmt: skip
        return "created"
    wanted = {"period_start": spec.period_start, "period_end": spec.period_end,
              "amount": spec.amount, "currency": "USD"}  # fmt: skip
    if all(getattr(entry, name) == value for name, value in wanted.items()):
        return "unchanged"
    for name, value in wanted.items():
        setattr(entry, name, value)
    manual_revenue_entry_save(entry=entry)
    return "updated"
