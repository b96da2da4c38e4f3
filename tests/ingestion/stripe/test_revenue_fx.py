"""Reporting-currency figures: each day at its stored rate; never a silent mixed sum."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from ingestion.revenue_math import CurrencyMismatchError, MissingFxRateError
from ingestion.revenue_selectors import (
    billed_collected_by_customer_month,
    recognized_revenue_by_customer_day,
    recognized_revenue_by_customer_month,
    revenue_by_customer_period,
)
from ingestion.services.revenue import fx_rate_set, manual_revenue_entry_create
from tests.accounts.factories import CustomerFactory

pytestmark = pytest.mark.django_db

JAN, FEB = date(2026, 1, 1), date(2026, 2, 1)


def entry(org, customer, amount: str, currency: str, start=JAN, end=FEB):
    return manual_revenue_entry_create(
        organization=org, customer=customer, period_start=start, period_end=end,
        amount=Decimal(amount), currency=currency, description="offline contract",
    )  # fmt: skip


@pytest.fixture
def books(org):
    a = CustomerFactory(organization=org, external_id="a")
    b = CustomerFactory(organization=org, external_id="b")
    c = CustomerFactory(organization=org, external_id="c")
    entry(org, a, "310.00", "USD")  # 10.00 a day
    entry(org, a, "62.00", "EUR")  # 2.00 a day
    entry(org, b, "31000", "JPY")  # 1,000 yen a day
    entry(org, c, "3.100", "KWD")  # 0.100 dinar a day
    return a, b, c


def test_mixed_currencies_without_rates_are_refused(org, books):
    with pytest.raises(MissingFxRateError, match="No FX rate EUR→USD on or before 2026-01-01"):
        recognized_revenue_by_customer_month(organization=org, start=JAN, end=FEB)
    # In their own currencies, customer a's January mixes USD and EUR: refused too.
    with pytest.raises(CurrencyMismatchError, match="Cannot add"):
        revenue_by_customer_period(
            organization=org, measure="recognized", start=JAN, end=FEB, reporting_currency=False
        )


def test_single_currency_totals_need_no_rate(org):
    b = CustomerFactory(organization=org, external_id="b")
    c = CustomerFactory(organization=org, external_id="c")
    entry(org, b, "31000", "JPY")
    entry(org, c, "3.100", "KWD")

    native = revenue_by_customer_period(
        organization=org, measure="recognized", start=JAN, end=FEB, reporting_currency=False
    )

    assert native == {(b.pk, JAN): Decimal("31000"), (c.pk, JAN): Decimal("3.100")}


def test_each_day_converts_at_its_rate_organization_rate_first(org, books):
    a, b, c = books
    fx_rate_set(organization=None, currency="EUR", quote_currency="USD", day=date(2025, 12, 1),
                rate=Decimal("1.1"))  # fmt: skip
    fx_rate_set(organization=org, currency="EUR", quote_currency="USD", day=date(2026, 1, 16),
                rate=Decimal("1.2"))  # fmt: skip
    fx_rate_set(organization=None, currency="JPY", quote_currency="USD", day=date(2025, 1, 1),
                rate=Decimal("0.0067"))  # fmt: skip
    fx_rate_set(organization=None, currency="KWD", quote_currency="USD", day=date(2025, 1, 1),
                rate=Decimal("3.254"))  # fmt: skip

    months = recognized_revenue_by_customer_month(organization=org, start=JAN, end=FEB)

    # a: 310.00 USD + EUR 2.00/day × (15 days × 1.1 global + 16 days × 1.2 own) = 310 + 33 + 38.40
    assert months[(a.pk, JAN)] == Decimal("381.40")
    # b: 31,000 JPY × 0.0067 = 207.70 USD
    assert months[(b.pk, JAN)] == Decimal("207.70")
    # c: 3.100 KWD × 3.254 = 10.0874, rounded once at the end to 10.09
    assert months[(c.pk, JAN)] == Decimal("10.09")

    days = recognized_revenue_by_customer_day(organization=org, start=JAN, end=FEB)
    assert days[(a.pk, date(2026, 1, 15))] == Decimal("12.20")  # 10 + 2 × 1.1
    assert days[(a.pk, date(2026, 1, 16))] == Decimal("12.40")  # 10 + 2 × 1.2
    assert days[(c.pk, date(2026, 1, 1))] == Decimal("0.33")  # 0.100 × 3.254 = 0.3254

    # Billed on the period's first day, at that day's rate: 310 + 62 × 1.1 = 378.20.
    billed = billed_collected_by_customer_month(organization=org, start=JAN, end=FEB)
    assert billed[(a.pk, JAN)] == {"billed": Decimal("378.20"), "collected": Decimal("0.00")}


def test_a_rate_starting_later_does_not_cover_earlier_days(org, books):
    a, _, _ = books
    fx_rate_set(organization=org, currency="EUR", quote_currency="USD", day=date(2026, 1, 10),
                rate=Decimal("1.2"))  # fmt: skip
    fx_rate_set(organization=org, currency="JPY", quote_currency="USD", day=date(2026, 1, 1),
                rate=Decimal("0.0067"))  # fmt: skip
    fx_rate_set(organization=org, currency="KWD", quote_currency="USD", day=date(2026, 1, 1),
                rate=Decimal("3.254"))  # fmt: skip

    with pytest.raises(MissingFxRateError, match="EUR→USD on or before 2026-01-01 for acme"):
        recognized_revenue_by_customer_month(organization=org, start=JAN, end=FEB)
    later = recognized_revenue_by_customer_month(organization=org, start=date(2026, 1, 10), end=FEB)
    # 22 days from Jan 10: 22 × (10.00 + 2.00 × 1.2)
    assert later[(a.pk, JAN)] == Decimal("272.80")


def test_another_organizations_rate_is_not_used(org, other_org, books):
    fx_rate_set(organization=other_org, currency="EUR", quote_currency="USD", day=date(2025, 1, 1),
                rate=Decimal("1.1"))  # fmt: skip

    with pytest.raises(MissingFxRateError):
        recognized_revenue_by_customer_month(organization=org, start=JAN, end=FEB)
