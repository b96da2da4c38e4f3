"""Economics policy and the classifications it drives: health band, underwater, profitability.

Thresholds are ``Decimal`` fractions of revenue (0.30 = 30 %). Health bands by AI cost ratio
(AI cost ÷ recognized revenue), with the defaults::

    healthy < 0.30 ≤ watch < 0.40 ≤ at_risk < 1.00 ≤ margin_negative

A ratio exactly on a threshold belongs to the band above it. Decided edge cases:

- revenue ≤ 0 with a positive cost: no ratio (``None``), band ``margin_negative``, underwater;
- cost ≤ 0 (nothing spent, or a credit): band ``healthy``, not underwater, whatever the
  revenue — zero cost with zero revenue is an account that costs nothing, not a margin problem;
- profitability by contribution margin % with an inclusive break-even band (default ±5 %):
  above it profitable, inside it (edges included) break-even, below it unprofitable. With no
  revenue there is no %, so the sign of the margin in dollars decides: 0 → break-even,
  a loss → unprofitable, a gain → profitable.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final

from economics.calculations.base import CENT, ZERO, divide, to_decimal


class Band(StrEnum):
    """Health band by cost ratio, best first."""

    HEALTHY = "healthy"
    WATCH = "watch"
    AT_RISK = "at_risk"
    MARGIN_NEGATIVE = "margin_negative"

    @property
    def severity(self) -> int:
        """0 for healthy … 3 for margin-negative (for ordering and comparisons)."""
        return BANDS.index(self)


BANDS: Final = (Band.HEALTHY, Band.WATCH, Band.AT_RISK, Band.MARGIN_NEGATIVE)


class Profitability(StrEnum):
    """Class by contribution margin % against the break-even band."""

    PROFITABLE = "profitable"
    BREAK_EVEN = "break_even"
    UNPROFITABLE = "unprofitable"


class OverheadRule(StrEnum):
    """How overhead is shared among customers: by requests, tokens, revenue, or evenly."""

    REQUESTS = "requests"
    TOKENS = "tokens"
    REVENUE = "revenue"
    EVEN = "even"


@dataclass(frozen=True)
class Policy:
    """An organization's economics policy; ratios are fractions of 1, money is USD.

    ``tail_ratio`` × the plan's price is the per-account cost at which an account counts as
    the plan's tail; ``None`` means the underwater threshold (DESIGN §7). ``overhead`` is the
    infrastructure/overhead amount (USD, whole cents) to allocate over the period being
    computed; the caller scales a monthly figure to other period lengths. Requests are the
    default allocation basis: infrastructure load follows requests more than tokens or revenue.
    """

    watch_threshold: Decimal = Decimal("0.30")
    at_risk_threshold: Decimal = Decimal("0.40")
    margin_negative_threshold: Decimal = Decimal("1.00")
    underwater_threshold: Decimal = Decimal("0.40")
    break_even_band: Decimal = Decimal("0.05")
    tail_ratio: Decimal | None = None
    overhead_rule: OverheadRule = OverheadRule.REQUESTS
    overhead: Decimal = ZERO

    def __post_init__(self) -> None:
        for name in (
            "watch_threshold",
            "at_risk_threshold",
            "margin_negative_threshold",
            "underwater_threshold",
            "break_even_band",
            "overhead",
        ):
            value = to_decimal(getattr(self, name), name=name)
            if value < 0:
                raise ValueError(f"{name} must not be negative (got {value})")
            object.__setattr__(self, name, value)
        if self.tail_ratio is not None:
            tail = to_decimal(self.tail_ratio, name="tail_ratio")
            if tail < 0:
                raise ValueError(f"tail_ratio must not be negative (got {tail})")
            object.__setattr__(self, "tail_ratio", tail)
        if not self.watch_threshold < self.at_risk_threshold < self.margin_negative_threshold:
            raise ValueError(
                "band thresholds must ascend strictly: watch < at_risk < margin_negative "
                f"(got {self.watch_threshold}, {self.at_risk_threshold}, "
                f"{self.margin_negative_threshold})"
            )
        if self.overhead % CENT:
            raise ValueError(f"overhead must be whole cents (got {self.overhead})")
        try:
            object.__setattr__(self, "overhead_rule", OverheadRule(self.overhead_rule))
        except ValueError as error:
            choices = ", ".join(rule.value for rule in OverheadRule)
            raise ValueError(
                f"overhead_rule must be one of {choices} (got {self.overhead_rule!r})"
            ) from error

    @property
    def tail_threshold_ratio(self) -> Decimal:
        """The multiple of the plan price at which an account joins the tail."""
        return self.underwater_threshold if self.tail_ratio is None else self.tail_ratio


DEFAULT_POLICY: Final = Policy()


def cost_ratio(cost: Decimal, revenue: Decimal) -> Decimal | None:
    """AI cost ÷ revenue as a fraction (0.25 = 25 %); ``None`` when revenue is ≤ 0."""
    if revenue <= 0:
        return None
    return divide(cost, revenue)


def band(cost: Decimal, revenue: Decimal, policy: Policy = DEFAULT_POLICY) -> Band:
    """Health band of ``cost`` against ``revenue`` (same unit, e.g. USD for a period)."""
    if cost <= 0:
        return Band.HEALTHY
    ratio = cost_ratio(cost, revenue)
    if ratio is None or ratio >= policy.margin_negative_threshold:
        return Band.MARGIN_NEGATIVE
    if ratio >= policy.at_risk_threshold:
        return Band.AT_RISK
    if ratio >= policy.watch_threshold:
        return Band.WATCH
    return Band.HEALTHY


def is_underwater(cost: Decimal, revenue: Decimal, policy: Policy = DEFAULT_POLICY) -> bool:
    """Whether the cost ratio is at or above the underwater threshold (any cost, no revenue)."""
    if cost <= 0:
        return False
    ratio = cost_ratio(cost, revenue)
    return ratio is None or ratio >= policy.underwater_threshold


def contribution_margin(revenue: Decimal, cost_to_serve: Decimal) -> Decimal:
    """Revenue − cost-to-serve, USD."""
    return revenue - cost_to_serve


def margin_pct(margin: Decimal, revenue: Decimal) -> Decimal | None:
    """Margin as a fraction of revenue (0.25 = 25 %); ``None`` when revenue is ≤ 0."""
    if revenue <= 0:
        return None
    return divide(margin, revenue)


def profitability(
    revenue: Decimal, cost_to_serve: Decimal, policy: Policy = DEFAULT_POLICY
) -> Profitability:
    """Profitable / break-even / unprofitable by contribution margin % (see module notes)."""
    margin = contribution_margin(revenue, cost_to_serve)
    pct = margin_pct(margin, revenue)
    if pct is None:
        if margin == 0:
            return Profitability.BREAK_EVEN
        return Profitability.PROFITABLE if margin > 0 else Profitability.UNPROFITABLE
    if pct > policy.break_even_band:
        return Profitability.PROFITABLE
    if pct < -policy.break_even_band:
        return Profitability.UNPROFITABLE
    return Profitability.BREAK_EVEN
