"""The ingestion part of ``seed_demo``: usage, then provider usage and bills, then revenue.

Each step goes through the same services production uses and is safe to re-run.
"""

from __future__ import annotations

from accounts.models import Organization
from ingestion.demo import providers, revenue, usage


class DemoSummary(list):
    def __str__(self) -> str:
        return "\n  ".join(str(part) for part in self)


def demo_seed(*, organization: Organization, scale: float | None = None) -> DemoSummary:
    """Seed the demo organization's ledger, provider sync and reconciliation, and revenue."""
    summary = DemoSummary()
    summary.append(usage.demo_seed(organization=organization, scale=scale))
    summary.append(providers.demo_seed(organization=organization))
    summary.append(revenue.demo_seed(organization=organization, scale=scale))
    return summary
