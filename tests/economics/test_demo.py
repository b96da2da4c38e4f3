"""The demo organization's economics tell the story the dashboards are meant to show.

Seeded at full scale (usage, revenue, then economics), once for the module: a few Enterprise
accounts underwater, a margin-negative feature on Pro, a plan with a heavy tail — in the
last full month, the one a reviewer opens first.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from accounts import demo as accounts_demo
from economics import demo as economics_demo
from economics.models import CustomerEconomics, EconomicsSnapshot
from ingestion.demo import revenue as revenue_demo
from ingestion.demo import usage as usage_demo

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def snapshot(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            organization = accounts_demo.demo_seed().organization
            usage_demo.demo_seed(organization=organization, scale=1)
            revenue_demo.demo_seed(organization=organization, scale=1)
            summary = economics_demo.demo_seed(organization=organization)
            last_month = (datetime.now(UTC).date().replace(day=1) - timedelta(days=1)).replace(
                day=1
            )
            yield (
                EconomicsSnapshot.objects.get(
                    organization=organization, kind="month", period_start=last_month
                ),
                summary,
            )
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def test_the_seed_reports_its_snapshots(snapshot):
    month, summary = snapshot
    assert "snapshot(s);" in summary and "underwater" in summary
    assert month.customers.exists() and month.features and month.plans and month.trend


def test_a_few_enterprise_accounts_are_underwater(snapshot):
    month, _ = snapshot
    underwater = CustomerEconomics.objects.filter(
        snapshot=month, plan__code="enterprise", underwater=True
    ).values_list("customer__external_id", flat=True)
    assert 1 <= len(underwater) <= 4
    assert set(underwater) <= set(usage_demo.HEAVY)


def test_a_feature_is_margin_negative_on_pro(snapshot):
    month, _ = snapshot
    on_pro = {row["feature"]: row for row in month.features if row["plan"] == "pro"}
    assert on_pro["research-agent"]["band"] == "margin_negative"
    assert Decimal(on_pro["research-agent"]["health_ratio"]) >= 1
    # The rest of Pro's features earn their keep.
    others = [row for key, row in on_pro.items() if key != "research-agent" and row["band"]]
    assert others and all(row["band"] == "healthy" for row in others)


def test_pro_has_a_heavy_tail(snapshot):
    month, _ = snapshot
    pro = next(row for row in month.plans if row["plan"] == "pro")
    assert Decimal(pro["tail_account_share"]) <= Decimal("0.15")  # a few accounts …
    assert Decimal(pro["tail_cost_share"]) >= Decimal("0.5")  # … carry most of the cost
    assert Decimal(pro["cost_p95"]) > Decimal(pro["tail_threshold"]) > Decimal(pro["cost_median"])


def test_the_organization_is_profitable_overall(snapshot):
    month, _ = snapshot
    summary = month.summary
    assert Decimal(summary["revenue"]) > 50_000
    assert Decimal("0.03") < Decimal(summary["cost_ratio"]) < Decimal("0.30")
    assert summary["band"] == "healthy"
