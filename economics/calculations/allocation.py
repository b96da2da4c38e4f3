"""Splitting money exactly: overhead over customers, revenue over usage, a bill over groups.

Every split hands out whole quanta (cents by default) by largest remainder, so the parts add
up to the total exactly; ties go to the key listed first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from economics.calculations.base import CENT, CONTEXT, ZERO, K, to_decimal
from economics.calculations.policy import OverheadRule
from ingestion.reconciliation_math import UNATTRIBUTED as BILL_UNATTRIBUTED
from ingestion.reconciliation_math import allocate_reconciled_cost

UNATTRIBUTED: Final = "unattributed"  # the same key ingestion.reconciliation_math uses


def _as_integer(value: Decimal, scale: int) -> int:
    """``value × 10**scale`` as an exact integer (``scale`` at least its decimal places)."""
    _, digits, exponent = value.as_tuple()
    return int("".join(map(str, digits))) * 10 ** (exponent + scale)


def allocate(
    total: Decimal, weights: Mapping[K, Decimal | int], *, quantum: Decimal = CENT
) -> dict[K, Decimal]:
    """Split ``total`` (USD) over the keys of ``weights`` in proportion to their weights.

    Parts are multiples of ``quantum`` and sum to ``total`` exactly: each key gets the floor
    of its exact share and the leftover quanta go one each to the largest remainders (ties:
    the key listed first). A negative total (a credit) mirrors a positive one. When every
    weight is 0 the total is split evenly, so nothing is lost. ``total`` must be a multiple
    of ``quantum``; weights must not be negative; a non-zero total needs at least one key.
    """
    total = to_decimal(total, name="total")
    if quantum <= 0:
        raise ValueError(f"quantum must be positive (got {quantum})")
    units = CONTEXT.divide(total, quantum)
    if units != units.to_integral_value():
        raise ValueError(f"total {total} is not a multiple of the quantum {quantum}")
    clean = {key: to_decimal(weight, name=f"weight of {key!r}") for key, weight in weights.items()}
    if any(weight < 0 for weight in clean.values()):
        raise ValueError("weights must not be negative")
    if not clean:
        if total:
            raise ValueError(f"nothing to allocate {total} to: no keys")
        return {}
    if not any(clean.values()):
        clean = dict.fromkeys(clean, Decimal(1))

    # Integer arithmetic throughout: weights scaled to integers, so floors and remainders
    # are exact whatever the weights' precision (no context rounding near a whole quantum).
    scale = max(0, *(-weight.as_tuple().exponent for weight in clean.values()))
    scaled = {key: _as_integer(weight, scale) for key, weight in clean.items()}
    denominator = sum(scaled.values())
    sign, magnitude = (-1 if units < 0 else 1), abs(int(units))
    counts: dict[K, int] = {}
    remainders = []
    for order, (key, weight) in enumerate(scaled.items()):
        counts[key], remainder = divmod(magnitude * weight, denominator)
        remainders.append((-remainder, order, key))
    leftover = magnitude - sum(counts.values())  # < number of keys
    for _, _, key in sorted(remainders, key=lambda item: item[:2])[:leftover]:
        counts[key] += 1
    return {key: sign * count * quantum for key, count in counts.items()}


def allocate_evenly(
    total: Decimal, keys: Iterable[K], *, quantum: Decimal = CENT
) -> dict[K, Decimal]:
    """Split ``total`` (USD) equally over ``keys``; the odd quanta go to the first keys."""
    return allocate(total, dict.fromkeys(keys, 1), quantum=quantum)


def overhead_weight(rule: OverheadRule, *, requests: int, tokens: int, revenue: Decimal) -> Decimal:
    """One customer's weight under an overhead ``rule`` (negative revenue weighs nothing)."""
    if rule is OverheadRule.REQUESTS:
        return Decimal(requests)
    if rule is OverheadRule.TOKENS:
        return Decimal(tokens)
    if rule is OverheadRule.REVENUE:
        return max(revenue, ZERO)
    return Decimal(1)


@dataclass(frozen=True)
class ReconciledCosts:
    """AI cost per group (USD): reconciled with the provider bill where there is one.

    ``costs`` = ``reconciled`` + ``provisional`` per group. ``reconciled`` holds the groups'
    shares of billed amounts; ``provisional`` their ledger cost on bills not (yet) known.
    ``unattributed`` is billed money no group accounts for (uninstrumented traffic, or a
    bill with no ledger usage): kept visible, never spread over the groups.
    """

    costs: dict = field(default_factory=dict)
    reconciled: dict = field(default_factory=dict)
    provisional: dict = field(default_factory=dict)
    unattributed: Decimal = ZERO

    def is_provisional(self, group: Hashable) -> bool:
        """Whether any of ``group``'s cost is still the ledger's estimate."""
        return group in self.provisional


def reconciled_costs(
    lines: Iterable[tuple[Hashable, Hashable, Decimal]],
    bills: Mapping[Hashable, Decimal],
    *,
    uninstrumented: Mapping[Hashable, Decimal] | None = None,
) -> ReconciledCosts:
    """AI cost per group: provider bills spread by ledger cost, ledger cost where no bill.

    ``lines`` are ``(bill key, group, ledger cost)``: e.g. bill key ``(provider, day, model)``
    as in the reconciliation lines, group a customer or ``(customer, feature)``. ``bills``
    maps a bill key to its invoiced USD; ``uninstrumented`` to its provider usage no ledger
    event accounts for (it takes its share of the bill as ``unattributed``). Each bill is
    split with ingestion's :func:`~ingestion.reconciliation_math.allocate_reconciled_cost`,
    so economics and reconciliation spread a bill the same way.
    """
    uninstrumented = uninstrumented or {}
    by_bill: dict[Hashable, dict[Hashable, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for bill, group, cost in lines:
        by_bill[bill][group] += cost
    reconciled: dict[Hashable, Decimal] = defaultdict(Decimal)
    provisional: dict[Hashable, Decimal] = defaultdict(Decimal)
    unattributed = ZERO
    for bill in sorted(set(by_bill) | set(bills), key=repr):
        groups = by_bill.get(bill, {})
        if bill not in bills:
            for group, cost in groups.items():
                provisional[group] += cost
            continue
        shares = allocate_reconciled_cost(
            invoiced=bills[bill],
            ledger_costs=groups,
            uninstrumented_cost=uninstrumented.get(bill, ZERO),
        )
        for group, amount in shares.items():
            if group == BILL_UNATTRIBUTED and group not in groups:
                unattributed += amount
            else:
                reconciled[group] += amount
    costs: dict[Hashable, Decimal] = defaultdict(Decimal)
    for part in (reconciled, provisional):
        for group, amount in part.items():
            costs[group] += amount
    return ReconciledCosts(
        costs=dict(costs),
        reconciled=dict(reconciled),
        provisional=dict(provisional),
        unattributed=unattributed,
    )
