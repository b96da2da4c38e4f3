"""The economics part of ``seed_demo``: a policy with overhead, then every period's snapshot.

Runs after ingestion's demo (usage, provider bills, revenue), through the same services the
refresh task uses; safe to re-run.
"""

from __future__ import annotations

from decimal import Decimal

from accounts.models import Organization
from economics.models import EconomicsPolicy
from economics.services import economics_policy_update, economics_refresh

DEMO_MONTHLY_OVERHEAD = Decimal("2500.00")  # hosting, vector store, observability


def demo_seed(*, organization: Organization) -> str:
    """Set the demo policy once, then compute the snapshots of every changed period."""
    if not EconomicsPolicy.objects.filter(organization=organization).exists():
        economics_policy_update(
            organization=organization, user=None, monthly_overhead=DEMO_MONTHLY_OVERHEAD
        )
    result = economics_refresh(organization=organization)
    latest = max(
        (s for s in result.snapshots if s.kind == s.Kind.MONTH),
        key=lambda s: s.period_start,
        default=None,
    )
    if latest is None:
        return "snapshots already current"
    summary = latest.summary
    return (
        f"{len(result.snapshots)} snapshot(s); {latest}: revenue "
        f"${Decimal(summary['revenue']):,.2f}, AI cost ${Decimal(summary['ai_cost']):,.2f}, "
        f"{summary['underwater']} underwater of {summary['customers']} customers"
    )
