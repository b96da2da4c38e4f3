"""Pure revenue arithmetic: minor units, ratable daily recognition, FX conversion.

No Django, no I/O. Amounts are ``Decimal`` in a currency's major unit; Stripe's
integers are minor units, converted by the currency's ISO 4217 exponent
(JPY 0, USD 2, KWD 3). Recognition splits an amount over days in whole minor
units and hands the remainder out one unit at a time from the first day, so
the days always sum exactly to the amount.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from metron.money import currency_exponent, quantize_money

__all__ = [
    "CurrencyMismatchError", "MissingFxRateError", "add_same_currency", "convert",
    "major_to_minor", "minor_to_major", "month_start", "ratable_daily", "service_days",
]  # fmt: skip


class CurrencyMismatchError(ValueError):
    """Amounts in different currencies were about to be added without an FX rate."""


class MissingFxRateError(LookupError):
    """No stored FX rate converts ``currency`` into ``quote_currency`` on ``day``."""

    def __init__(self, currency: str, quote_currency: str, day: date, organization: str = ""):
        self.currency, self.quote_currency, self.day = currency, quote_currency, day
        whose = f" for {organization}" if organization else ""
        super().__init__(
            f"No FX rate {currency}→{quote_currency} on or before {day.isoformat()}{whose}: "
            f"add one (admin › FX rates) before adding {currency} amounts to "
            f"{quote_currency} amounts."
        )


def minor_to_major(minor: int, currency: str) -> Decimal:
    """Stripe's integer minor units → a Decimal in the major unit (1999 USD → 19.99)."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"Minor units must be an integer, got {minor!r}.")
    return Decimal(minor).scaleb(-currency_exponent(currency))


def major_to_minor(amount: Decimal, currency: str) -> int:
    """A major-unit Decimal → integer minor units; refuses sub-minor-unit fractions."""
    scaled = Decimal(amount).scaleb(currency_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(
            f"{amount} has more decimal places than {currency.upper()} allows "
            f"({currency_exponent(currency)})."
        )
    return int(scaled)


def service_days(start: datetime | date, end: datetime | date | None) -> tuple[date, date]:
    """The half-open day range ``[first, last + 1)`` (UTC) a service period covers.

    A period ``[Jan 1 00:00, Feb 1 00:00)`` covers the 31 days of January; a period
    that starts and ends on the same day (one-off charges) covers that one day.
    """
    first = _utc_date(start)
    last = _utc_date(end) if end is not None else first
    if last <= first:
        last = first + timedelta(days=1)
    return first, last


def ratable_daily(
    amount: Decimal, currency: str, start: date, end: date
) -> list[tuple[date, Decimal]]:
    """Spread ``amount`` evenly over the days of ``[start, end)``, exactly.

    Each day gets ``amount // days`` minor units; the remainder goes one minor
    unit a day to the first days. Negative amounts (credits) mirror positive
    ones. The result sums to ``amount`` exactly.
    """
    days = (end - start).days
    if days <= 0:
        raise ValueError(f"Empty service period [{start}, {end}).")
    minor = major_to_minor(amount, currency)
    sign = -1 if minor < 0 else 1
    base, remainder = divmod(abs(minor), days)
    return [
        (
            start + timedelta(days=i),
            minor_to_major(sign * (base + (1 if i < remainder else 0)), currency),
        )
        for i in range(days)
    ]


def convert(amount: Decimal, rate: Decimal) -> Decimal:
    """``amount`` times ``rate``, unrounded: round once, when the figure is reported."""
    return amount * rate


def add_same_currency(amounts: Iterable[tuple[str, Decimal]]) -> tuple[str | None, Decimal]:
    """Sum ``(currency, amount)`` pairs that must all share one currency.

    Raises :class:`CurrencyMismatchError` rather than adding, say, JPY to USD.
    """
    currency: str | None = None
    total = Decimal(0)
    for code, amount in amounts:
        if currency is None:
            currency = code
        elif code != currency:
            raise CurrencyMismatchError(
                f"Cannot add {code} to {currency} amounts without an FX rate; convert them to "
                "the reporting currency first."
            )
        total += amount
    return currency, total


def quantize_totals(totals: Mapping, currency: str) -> dict:
    """Round every total of a mapping to ``currency``'s minor unit (the reporting boundary)."""
    return {key: quantize_money(value, currency) for key, value in totals.items()}


def month_start(day: date) -> date:
    return day.replace(day=1)


def _utc_date(value: datetime | date) -> date:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("Naive datetime: service periods are timezone-aware UTC.")
        return value.astimezone(UTC).date()
    return value
