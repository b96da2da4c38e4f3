"""The pure reconciliation calculations: allocation of a bill, variance and its explanation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingestion.reconciliation_math import (
    EXTRA_EVENTS,
    MIX,
    NOT_SYNCED,
    PRICE_DRIFT,
    UNATTRIBUTED,
    UNEXPLAINED,
    UNKEYED,
    UNPRICED,
    Usage,
    allocate_reconciled_cost,
    normalize_tier,
    percent,
    reconcile,
)

TWO = Decimal("2")
CENT = Decimal("0.01")


def usage(tokens=1_000_000, cost="10", **extra):
    return Usage(input_tokens=tokens - 100_000, output_tokens=100_000,
                 cost=None if cost is None else Decimal(cost), **extra)  # fmt: skip


def test_allocation_is_proportional_to_ledger_cost_and_keeps_the_dark_part_apart():
    shares = allocate_reconciled_cost(
        invoiced=Decimal("110.00"),
        ledger_costs={"search": Decimal("60"), "chat": Decimal("40")},
        uninstrumented_cost=Decimal("10"),
        quantum=CENT,
    )

    assert shares == {"search": Decimal("60.00"), "chat": Decimal("40.00"),
                      UNATTRIBUTED: Decimal("10.00")}  # fmt: skip


def test_allocation_adds_up_exactly_by_largest_remainder():
    shares = allocate_reconciled_cost(
        invoiced=Decimal("100.00"),
        ledger_costs={"a": Decimal(1), "b": Decimal(1), "c": Decimal(1)},
        quantum=CENT,
    )

    # 33.333… each: the odd cent goes to the first listed.
    assert shares == {"a": Decimal("33.34"), "b": Decimal("33.33"), "c": Decimal("33.33")}
    assert sum(shares.values()) == Decimal("100.00")


def test_allocation_edge_cases():
    # Nothing to weigh by: the whole bill is unattributed, never dropped.
    assert allocate_reconciled_cost(invoiced=Decimal("5.00"), ledger_costs={}, quantum=CENT) == {
        UNATTRIBUTED: Decimal("5.00")
    }
    assert allocate_reconciled_cost(invoiced=Decimal(0), ledger_costs={}) == {}
    # A credit (negative bill) is allocated with its sign; zero-cost groups get nothing.
    shares = allocate_reconciled_cost(
        invoiced=Decimal("-3.00"), ledger_costs={"a": Decimal(2), "b": Decimal(1), "z": Decimal(0)},
        quantum=CENT,
    )  # fmt: skip
    assert shares == {"a": Decimal("-2.00"), "b": Decimal("-1.00")}
    with pytest.raises(ValueError, match="multiple of the quantum"):
        allocate_reconciled_cost(invoiced=Decimal("1.005"), ledger_costs={"a": TWO}, quantum=CENT)
    with pytest.raises(ValueError, match="negative"):
        allocate_reconciled_cost(invoiced=TWO, ledger_costs={"a": Decimal(-1)})


@given(
    invoiced=st.integers(min_value=0, max_value=10**9),
    costs=st.lists(st.integers(min_value=0, max_value=10**6), max_size=8),
    dark=st.integers(min_value=0, max_value=10**6),
)
def test_allocation_always_sums_to_the_bill_and_stays_within_a_quantum_of_pro_rata(
    invoiced, costs, dark
):
    bill = Decimal(invoiced) * CENT
    ledger = {f"g{i}": Decimal(c) for i, c in enumerate(costs)}

    shares = allocate_reconciled_cost(
        invoiced=bill, ledger_costs=ledger, uninstrumented_cost=Decimal(dark), quantum=CENT
    )

    assert sum(shares.values(), Decimal(0)) == bill
    total = sum(ledger.values(), Decimal(0)) + dark
    if not total:
        assert shares == ({UNATTRIBUTED: bill} if bill else {})
        return
    for key, share in shares.items():
        weight = Decimal(dark) if key == UNATTRIBUTED else ledger[key]
        assert abs(share - bill * weight / total) < CENT


def test_percent_and_tier_normalization():
    assert percent(5, 200) == Decimal("2.5000")
    assert percent(0, 0) is None
    assert percent(3, 0) == Decimal(100) and percent(-3, 0) == Decimal(-100)
    assert percent(1, Decimal("1e-12")) == Decimal("99999999.0000")
    assert normalize_tier("default", False) == normalize_tier("", False) == "standard"
    assert normalize_tier("standard", True) == normalize_tier("batch", False) == "batch"
    assert normalize_tier("flex", False) == "flex"


def test_within_tolerance_is_not_flagged():
    verdict = reconcile(ledger=usage(cost="10"), provider=usage(cost="10.1"), invoiced=None,
                        tolerance=TWO)  # fmt: skip

    assert not verdict.flagged
    assert verdict.variance == Decimal("0.1")
    assert verdict.variance_percent == Decimal("0.9901")
    assert verdict.explanation == "Within tolerance."


def test_ledger_ahead_of_the_provider_is_extra_events():
    verdict = reconcile(ledger=usage(1_100_000, cost="11"), provider=usage(cost="10"),
                        invoiced=Decimal("10"), tolerance=TWO)  # fmt: skip

    assert verdict.flagged and verdict.reasons == (EXTRA_EVENTS,)
    assert verdict.token_variance_percent == Decimal("-10.0000")


def test_same_tokens_different_cost_is_price_drift_and_a_mix_change_is_not():
    drift = reconcile(ledger=usage(cost="10"), provider=usage(cost="10"),
                      invoiced=Decimal("8"), tolerance=TWO)  # fmt: skip
    assert drift.flagged and drift.reasons == (PRICE_DRIFT,)
    assert drift.variance_percent == Decimal("-25.0000")
    assert "billed $8.0000 for tokens Metron prices at $10.0000" in drift.explanation

    mix = reconcile(
        ledger=usage(cost="10", tiers={"standard": 1_000_000}),
        provider=usage(cost="5", tiers={"batch": 1_000_000}),
        invoiced=Decimal("5"), tolerance=TWO,
    )  # fmt: skip
    assert mix.flagged and mix.reasons == (MIX,)
    assert "batch tokens 1,000,000 at the provider vs 0 in the ledger" in mix.explanation


def test_unpriced_unsynced_unkeyed_and_unexplained():
    assert reconcile(ledger=usage(), provider=None, invoiced=None, tolerance=TWO).reasons == (
        NOT_SYNCED,
    )
    unpriced = reconcile(ledger=usage(), provider=usage(cost=None), invoiced=None, tolerance=TWO)
    assert unpriced.reasons == (UNPRICED,) and not unpriced.flagged
    unkeyed = reconcile(ledger=usage(), provider=usage(500_000), invoiced=None, tolerance=TWO,
                        unkeyed_ledger=True, judge=False)  # fmt: skip
    assert not unkeyed.flagged and UNKEYED in unkeyed.reasons
    # The ledger's cost differs although tokens and the bill agree (a reported cost, say):
    odd = reconcile(ledger=usage(cost="10"), provider=usage(cost=None),
                    invoiced=Decimal("12"), tolerance=TWO)  # fmt: skip
    assert odd.flagged and odd.reasons == (UNPRICED,)
    # Each pair of figures within 2%, but bill vs ledger beyond it: nothing to blame.
    split = reconcile(ledger=usage(cost="98.1"), provider=usage(cost="100"),
                      invoiced=Decimal("101.9"), tolerance=TWO)  # fmt: skip
    assert split.flagged and split.reasons == (UNEXPLAINED,)
    assert split.variance == Decimal("3.8")
