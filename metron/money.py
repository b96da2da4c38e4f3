"""Money and token-price precision, kept in one place.

Amounts are ``Decimal`` end to end. Per-request costs need sub-cent precision,
so ledger amounts carry 12 decimal places; report figures are rounded once, at
the boundary, to the currency's minor unit with :func:`quantize_money`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.db import models

MONEY_MAX_DIGITS = 18
MONEY_DECIMAL_PLACES = 2
COST_MAX_DIGITS = 24
COST_DECIMAL_PLACES = 12  # USD per request: fractions of a cent are real money at scale
RATE_MAX_DIGITS = 12
RATE_DECIMAL_PLACES = 6

ZERO = Decimal("0")
# Business decision: half-up, applied once when a figure is stored or shown.
MONEY_ROUNDING = ROUND_HALF_UP

# ISO 4217 minor-unit exponents that differ from 2; everything else uses 2.
CURRENCY_EXPONENTS = {
    "BHD": 3, "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3,
    "JPY": 0, "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3, "MGA": 0, "OMR": 3, "PYG": 0,
    "RWF": 0, "TND": 3, "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}  # fmt: skip


def currency_exponent(currency: str) -> int:
    """Number of decimal places of the currency's minor unit (USD → 2, JPY → 0)."""
    return CURRENCY_EXPONENTS.get(currency.upper(), 2)


def quantize_money(value: Decimal, currency: str = "USD") -> Decimal:
    """Round an amount to the currency's minor unit (half-up)."""
    return value.quantize(Decimal(1).scaleb(-currency_exponent(currency)), rounding=MONEY_ROUNDING)


def money_field(**kwargs) -> models.DecimalField:
    """A report-level amount in a currency's major unit (e.g. dollars, 2 places)."""
    # Imported here: pure calculation modules use this module without Django.
    from django.db import models

    return models.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, **kwargs
    )


def cost_field(**kwargs) -> models.DecimalField:
    """A per-request or per-token USD amount with sub-cent precision."""
    from django.db import models

    return models.DecimalField(
        max_digits=COST_MAX_DIGITS, decimal_places=COST_DECIMAL_PLACES, **kwargs
    )
