"""Ratable daily recognition and minor units: exact to the last minor unit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingestion.revenue_math import (
    CurrencyMismatchError,
    add_same_currency,
    major_to_minor,
    minor_to_major,
    ratable_daily,
    service_days,
)


def test_100_dollars_over_january_lose_no_cent():
    days = ratable_daily(Decimal("100.00"), "USD", date(2026, 1, 1), date(2026, 2, 1))

    # 10,000 cents / 31 days = 322 r 18: the first 18 days get 3.23, the other 13 get 3.22.
    assert len(days) == 31
    assert [amount for _, amount in days[:18]] == [Decimal("3.23")] * 18
    assert [amount for _, amount in days[18:]] == [Decimal("3.22")] * 13
    assert sum(amount for _, amount in days) == Decimal("100.00")
    assert days[0][0] == date(2026, 1, 1) and days[-1][0] == date(2026, 1, 31)


@pytest.mark.parametrize(
    ("currency", "minor", "major", "first_day", "last_day"),
    [
        # 10,000 yen over 3 days: no sub-yen amounts, 3,334 + 3,333 + 3,333.
        ("JPY", 10_000, Decimal("10000"), Decimal("3334"), Decimal("3333")),
        # 100.00 USD over 3 days: 33.34 + 33.33 + 33.33.
        ("USD", 10_000, Decimal("100.00"), Decimal("33.34"), Decimal("33.33")),
        # 10.000 KWD (three decimals) over 3 days: 3.334 + 3.333 + 3.333.
        ("KWD", 10_000, Decimal("10.000"), Decimal("3.334"), Decimal("3.333")),
    ],
)
def test_minor_units_by_currency_exponent(currency, minor, major, first_day, last_day):
    assert minor_to_major(minor, currency) == major
    assert major_to_minor(major, currency) == minor

    days = ratable_daily(major, currency, date(2026, 3, 1), date(2026, 3, 4))

    assert [amount for _, amount in days] == [first_day, last_day, last_day]
    assert sum(amount for _, amount in days) == major


def test_stripe_integers_convert_by_exponent():
    assert minor_to_major(1999, "usd") == Decimal("19.99")
    assert minor_to_major(1999, "JPY") == Decimal("1999")
    assert minor_to_major(1999, "KWD") == Decimal("1.999")
    with pytest.raises(TypeError):
        minor_to_major(19.99, "USD")  # never floats


@pytest.mark.parametrize(
    ("amount", "currency"), [("10.5", "JPY"), ("1.005", "USD"), ("0.0001", "KWD")]
)
def test_amounts_finer_than_the_minor_unit_are_refused(amount, currency):
    with pytest.raises(ValueError, match="decimal places"):
        major_to_minor(Decimal(amount), currency)


def test_credits_spread_like_charges_but_negative():
    days = ratable_daily(Decimal("-1.00"), "USD", date(2026, 1, 1), date(2026, 1, 4))

    assert [amount for _, amount in days] == [Decimal("-0.34"), Decimal("-0.33"), Decimal("-0.33")]


def test_service_days_of_a_stripe_period():
    start = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    end = datetime(2026, 2, 5, 9, 30, tzinfo=UTC)

    assert service_days(start, end) == (date(2026, 1, 5), date(2026, 2, 5))  # 31 days
    assert service_days(start, start) == (date(2026, 1, 5), date(2026, 1, 6))  # one-off charge


def test_adding_two_currencies_is_refused():
    assert add_same_currency([("USD", Decimal("1.10")), ("USD", Decimal("2.20"))]) == (
        "USD",
        Decimal("3.30"),
    )
    with pytest.raises(CurrencyMismatchError, match="Cannot add JPY to USD"):
        add_same_currency([("USD", Decimal("1.00")), ("JPY", Decimal("100"))])


@settings(max_examples=300, deadline=None)
@given(
    minor=st.integers(min_value=-(10**12), max_value=10**12),
    currency=st.sampled_from(["JPY", "USD", "KWD", "EUR", "BHD", "CLP"]),
    start=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1)),
    length=st.integers(min_value=1, max_value=800),
)
def test_daily_amounts_always_sum_exactly(minor, currency, start, length):
    amount = minor_to_major(minor, currency)

    days = ratable_daily(amount, currency, start, start + timedelta(days=length))

    assert sum(value for _, value in days) == amount
    assert len(days) == length
    # Never more than one minor unit between two days, and never a fraction of one.
    minors = [major_to_minor(value, currency) for _, value in days]
    assert max(minors) - min(minors) <= 1
