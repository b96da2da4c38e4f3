from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from accounts.models import Plan
from ingestion.fakes.stripe import start_stripe_fake
from ingestion.services.stripe.connection import stripe_connection_set
from tests.accounts.factories import CustomerFactory, PlanFactory

START = date(2026, 1, 1)


@pytest.fixture
def plans(org) -> dict[str, Plan]:
    return {
        "starter": PlanFactory(organization=org, code="starter", name="Starter",
                               price=Decimal("29.00"), stripe_price_ids=["price_starter"]),
        "pro": PlanFactory(organization=org, code="pro", name="Pro", price=Decimal("99.00"),
                           stripe_price_ids=["price_pro", "price_pro_legacy"]),
        "scale": PlanFactory(organization=org, code="scale", name="Scale",
                             price=Decimal("499.00"), stripe_price_ids=["price_scale"]),
    }  # fmt: skip


@pytest.fixture
def customers(org):
    return [
        CustomerFactory(organization=org, external_id=f"acct-{i}", name=f"Account {i}")
        for i in range(1, 7)
    ]


@pytest.fixture
def stripe_fake(plans, customers):
    """Six months of history for six customers (and one Stripe-only customer)."""
    fake = start_stripe_fake(
        customers=customers, plans=list(plans.values()), months=6, seed=7, start=START
    )
    yield fake
    fake.stop()


@pytest.fixture
def empty_fake():
    """A fake Stripe with nothing in it, for tests that build their own objects."""
    fake = start_stripe_fake(customers=[], plans=[], months=1, seed=3, start=START, unmatched=0)
    yield fake
    fake.stop()


def connect(org, fake):
    return stripe_connection_set(
        organization=org, api_key=fake.api_key, webhook_secret=fake.webhook_secret,
        api_base=fake.url,
    )  # fmt: skip


@pytest.fixture
def connection(org, stripe_fake):
    return connect(org, stripe_fake)
