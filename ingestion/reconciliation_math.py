"""Pure calculations of reconciliation: variance, its explanation, reconciled-cost allocation.

No database access: the reconciliation service feeds aggregates in and stores what comes
out; economics calls :func:`allocate_reconciled_cost` to spread a provider's bill over
features and customers. Amounts are USD ``Decimal``; percentages are ``Decimal`` percent.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Final

from metron.money import COST_DECIMAL_PLACES

ZERO: Final = Decimal(0)
HUNDRED: Final = Decimal(100)
COST_QUANTUM: Final = Decimal(1).scaleb(-COST_DECIMAL_PLACES)
PERCENT_QUANTUM: Final = Decimal("0.0001")
PERCENT_CAP: Final = Decimal("99999999")  # fits ReconciliationLine's percent columns
UNATTRIBUTED: Final = "unattributed"

# Explanation codes, in the order they are reported.
NOT_SYNCED = "not_synced"
UNINSTRUMENTED = "uninstrumented_traffic"
MISSING_EVENTS = "missing_events"
EXTRA_EVENTS = "extra_events"
MIX = "batch_cache_tier"
PRICE_DRIFT = "price_drift"
UNPRICED = "unpriced"
UNKEYED = "unkeyed_ledger_events"
NON_TOKEN = "non_token_charges"
UNEXPLAINED = "unexplained"

STANDARD_TIERS: Final = frozenset({"", "default", "standard", "auto", "on_demand"})


def normalize_tier(service_tier: str, batch: bool) -> str:
    """One name per pricing context: ``batch``, ``standard`` or the tier (``flex``, …)."""
    tier = (service_tier or "").strip().lower()
    if batch or tier == "batch":
        return "batch"
    return "standard" if tier in STANDARD_TIERS else tier


@dataclass(frozen=True)
class Usage:
    """One side's usage of a (day, model[, key]): tokens in the ledger convention, cost in USD.

    ``cost`` is ``None`` when any of it is unpriced (the priced part is not a total).
    ``tiers`` maps a normalized tier (:func:`normalize_tier`) to its tokens.
    """

    requests: int | None = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal | None = ZERO
    unpriced: int = 0
    tiers: Mapping[str, int] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        tiers = dict(self.tiers)
        for tier, tokens in other.tiers.items():
            tiers[tier] = tiers.get(tier, 0) + tokens
        requests = None
        if self.requests is not None or other.requests is not None:
            requests = (self.requests or 0) + (other.requests or 0)
        return Usage(
            requests=requests,
            input_tokens=self.input_tokens + other.input_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost=None if self.cost is None or other.cost is None else self.cost + other.cost,
            unpriced=self.unpriced + other.unpriced,
            tiers=tiers,
        )


EMPTY: Final = Usage()


def percent(part: Decimal | int, whole: Decimal | int | None) -> Decimal | None:
    """``part`` as a percentage of ``whole`` (4 places); ±100 when only ``whole`` is 0.

    Capped at ±``PERCENT_CAP`` (a near-zero ``whole`` would give an absurd figure).
    """
    part = Decimal(part)
    if not whole:
        return None if not part else (HUNDRED if part > 0 else -HUNDRED)
    value = part * HUNDRED / Decimal(whole)
    value = max(min(value, PERCENT_CAP), -PERCENT_CAP)
    return value.quantize(PERCENT_QUANTUM, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Verdict:
    """What reconciliation says of one row."""

    variance: Decimal  # USD: provider figure (invoiced, else usage at Metron's prices) − ledger
    variance_percent: Decimal | None  # of the provider figure
    token_variance_percent: Decimal | None  # (provider − ledger tokens) of provider tokens
    flagged: bool
    reasons: tuple[str, ...]
    explanation: str


def _money(value: Decimal) -> str:
    return f"${value.quantize(Decimal('0.0001'), rounding=ROUND_HALF_UP):,}"


def reconcile(
    *,
    ledger: Usage,
    provider: Usage | None,
    invoiced: Decimal | None,
    tolerance: Decimal,
    uninstrumented: Usage = EMPTY,
    uninstrumented_keys: tuple[str, ...] = (),
    unkeyed_ledger: bool = False,
    judge: bool = True,
) -> Verdict:
    """Compare the ledger with the provider's usage and bill; explain and flag the variance.

    ``provider`` None: the provider reported nothing for the day (not synced): not judged.
    ``uninstrumented``: provider usage on keys with no ledger events (part of ``provider``).
    ``judge`` False reports figures without flagging (a key split the ledger cannot make,
    e.g. when its events carry no key id). Flagged when the cost variance or the token
    variance exceeds ``tolerance`` percent.
    """
    if provider is None:
        variance = (invoiced or ZERO) - (ledger.cost or ZERO)
        return Verdict(
            variance, None, None, False, (NOT_SYNCED,),
            "No provider usage reported for this day (not synced yet): not reconciled.",
        )  # fmt: skip

    reference = invoiced if invoiced is not None else provider.cost
    variance = (reference or ZERO) - (ledger.cost or ZERO)
    variance_pct = percent(variance, reference) if reference is not None else None
    token_delta = provider.tokens - ledger.tokens
    token_pct = percent(token_delta, provider.tokens)

    def beyond(value: Decimal | None) -> bool:
        return value is not None and abs(value) > tolerance

    reasons: list[str] = []
    notes: list[str] = []
    if uninstrumented.tokens:
        reasons.append(UNINSTRUMENTED)
        keys = ", ".join(k or "(no key)" for k in uninstrumented_keys) or "these keys"
        cost = "" if uninstrumented.cost is None else f" ({_money(uninstrumented.cost)})"
        notes.append(
            f"Uninstrumented traffic: {uninstrumented.tokens:,} provider tokens{cost} on "
            f"{keys} with no ledger events."
        )
    instrumented_tokens = provider.tokens - uninstrumented.tokens
    missing = instrumented_tokens - ledger.tokens
    if missing > 0 and beyond(percent(missing, provider.tokens)):
        reasons.append(MISSING_EVENTS)
        notes.append(
            f"Missing events: the provider counted {missing:,} more tokens than the ledger "
            f"({percent(missing, provider.tokens)}% of its {provider.tokens:,})."
        )
    elif missing < 0 and beyond(percent(-missing, provider.tokens or ledger.tokens)):
        reasons.append(EXTRA_EVENTS)
        notes.append(
            f"The ledger holds {-missing:,} more tokens than the provider reported "
            "(duplicated events, a wrong provider or key, or a clock off by a day?)."
        )

    if not beyond(token_pct) and not uninstrumented.tokens:
        mix = []
        for label, ours, theirs in (
            ("cached", ledger.cached_input_tokens, provider.cached_input_tokens),
            ("cache-write", ledger.cache_write_tokens, provider.cache_write_tokens),
        ):
            if beyond(percent(theirs - ours, provider.tokens)):
                mix.append(f"{label} tokens {theirs:,} at the provider vs {ours:,} in the ledger")
        for tier in sorted(set(ledger.tiers) | set(provider.tiers)):
            ours, theirs = ledger.tiers.get(tier, 0), provider.tiers.get(tier, 0)
            if beyond(percent(theirs - ours, provider.tokens)):
                mix.append(f"{tier} tokens {theirs:,} at the provider vs {ours:,} in the ledger")
        if mix:
            reasons.append(MIX)
            notes.append("Batch/cache/tier mix differs: " + "; ".join(mix) + ".")
        elif provider.cost is not None:
            drift = None
            if invoiced is not None and beyond(percent(invoiced - provider.cost, invoiced)):
                drift = (
                    f"the provider billed {_money(invoiced)} for tokens Metron prices at "
                    f"{_money(provider.cost)}"
                )
            elif ledger.cost is not None and beyond(
                percent(provider.cost - ledger.cost, provider.cost)
            ):
                drift = (
                    f"the ledger's events cost {_money(ledger.cost)}, the same tokens at "
                    f"Metron's prices {_money(provider.cost)}"
                )
            if drift:
                reasons.append(PRICE_DRIFT)
                notes.append(
                    f"Price drift: same tokens, different cost: {drift} "
                    "(negotiated rate, price change or a missing price override?)."
                )
    if provider.cost is None or ledger.unpriced:
        reasons.append(UNPRICED)
        notes.append("Some usage is unpriced (unknown model or token type): add a price override.")
    if unkeyed_ledger:
        reasons.append(UNKEYED)
        notes.append(
            "Some ledger events carry no api_key_id: they cannot be matched to provider keys"
            + ("." if judge else ", so this key's figures are not judged.")
        )

    flagged = judge and (beyond(variance_pct) or beyond(token_pct))
    if flagged and not (set(reasons) - {UNKEYED}):
        reasons.append(UNEXPLAINED)
        notes.append("Variance beyond tolerance with no token, mix or price difference found.")
    if not notes:
        notes.append("Within tolerance.")
    return Verdict(variance, variance_pct, token_pct, flagged, tuple(reasons), " ".join(notes))


def allocate_reconciled_cost(
    *,
    invoiced: Decimal,
    ledger_costs: Mapping[Hashable, Decimal],
    uninstrumented_cost: Decimal = ZERO,
    quantum: Decimal = COST_QUANTUM,
) -> dict[Hashable, Decimal]:
    """Split a billed amount over ledger groups in proportion to their ledger cost.

    ``ledger_costs`` maps a group (a feature, a customer, a (feature, customer) pair, a
    model…) to its ledger cost; ``uninstrumented_cost`` (provider usage no ledger event
    accounts for) weighs like a group and its share is returned under ``UNATTRIBUTED``,
    an explicit line, never spread over the groups. Shares are multiples of ``quantum``
    and add up to ``invoiced`` exactly (largest remainder; ties go to the group listed
    first, the unattributed line last). With no weight at all, everything is
    unattributed. Groups of zero weight get nothing and are left out.
    """
    if any(cost < 0 for cost in ledger_costs.values()) or uninstrumented_cost < 0:
        raise ValueError("ledger costs and the uninstrumented cost must not be negative")
    units = invoiced / quantum
    if units != units.to_integral_value():
        raise ValueError(f"invoiced {invoiced} is not a multiple of the quantum {quantum}")
    units = int(units)
    weights: list[tuple[Hashable, Decimal]] = [(k, c) for k, c in ledger_costs.items() if c > 0]
    if uninstrumented_cost > 0:
        weights.append((UNATTRIBUTED, uninstrumented_cost))
    total = sum((w for _, w in weights), ZERO)
    if not total:
        return {UNATTRIBUTED: invoiced} if invoiced else {}

    sign, magnitude = (-1 if units < 0 else 1), abs(units)
    shares, remainders = {}, []
    for order, (key, weight) in enumerate(weights):
        exact = magnitude * weight / total
        whole = int(exact.to_integral_value(rounding=ROUND_FLOOR))
        shares[key] = whole
        remainders.append((-(exact - whole), order, key))
    for _, _, key in sorted(remainders)[: magnitude - sum(shares.values())]:
        shares[key] += 1
    return {key: sign * count * quantum for key, count in shares.items()}
