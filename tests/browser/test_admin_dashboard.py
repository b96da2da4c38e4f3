"""The ops start page in a real browser: login, figures, chart, organization switch."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Role
from accounts.services import membership_set
from ingestion.services.ingest import usage_events_ingest
from tests.accounts.factories import (
    PASSWORD,
    CustomerFactory,
    CustomerPlanFactory,
    FeatureFactory,
    MembershipFactory,
    OrganizationFactory,
    PlanFactory,
    ProviderKeyFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def catalog(roles):
    acme = OrganizationFactory(name="Acme AI", slug="acme")
    other = OrganizationFactory(name="Beta Labs", slug="beta")
    free = PlanFactory(organization=acme, code="free", name="Free", price=Decimal("0"))
    pro = PlanFactory(organization=acme, code="pro", name="Pro", price=Decimal("499"))
    for _ in range(3):
        CustomerPlanFactory(customer__organization=acme, plan=free)
    for _ in range(2):
        CustomerPlanFactory(customer__organization=acme, plan=pro)
    CustomerFactory(organization=acme, name="Unreviewed Co", needs_review=True)
    FeatureFactory(organization=acme, key="chat", name="Chat")
    ProviderKeyFactory(organization=acme, label="Stray key", feature=None)
    PlanFactory(organization=other, code="gold", name="Gold")
    usage_events_ingest(
        organization=acme,
        raw_events=[
            {"event_id": f"e{i}", "timestamp": timezone.now().isoformat(), "provider": "openai",
             "model": model, "input_tokens": 1_000_000, "output_tokens": 0}
            for i, model in enumerate(["gpt-4o", "gpt-4o", "house-model-1"])
        ],
    )  # fmt: skip
    user = MembershipFactory(organization=acme, role=Role.OPS, user__username="olivia").user
    membership_set(user=user, organization=other, role=Role.OPS)
    return acme


def test_dashboard_shows_the_catalog_and_switches_organization(
    live_server, browser, catalog, screenshot_dir
):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("input[name=username]", "olivia")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#metron-dashboard")

    assert page.inner_text("[data-kpi=customers]") == "6"
    assert page.inner_text("[data-kpi=provider-keys]") == "1"
    assert page.inner_text("[data-kpi=waiting-for-review]") == "2"
    assert "Unreviewed Co" in page.inner_text("[data-queue=customers]")
    assert "Stray key" in page.inner_text("[data-queue=keys]")
    # Usage: 2 × 1M gpt-4o input tokens at $2.50 per million; one unpriced model apart.
    assert page.inner_text("[data-kpi=requests-last-30-days]") == "3"
    assert page.inner_text("[data-kpi=ai-cost-last-30-days]") == "$5.00"
    assert page.inner_text("[data-kpi=unpriced-events]") == "1"
    assert "openai/house-model-1" in page.inner_text("[data-queue=unpriced]")

    # The bar chart is drawn by Chart.js with one bar per plan.
    page.wait_for_function(
        "() => window.Chart && Chart.getChart(document.querySelector('div.plans-chart canvas'))"
    )
    chart = page.evaluate(
        "() => { const c = Chart.getChart(document.querySelector('div.plans-chart canvas'));"
        " return {labels: c.data.labels, data: c.data.datasets[0].data}; }"
    )
    assert chart == {"labels": ["Free", "Pro"], "data": [3, 2]}
    cost = page.evaluate(
        "() => Chart.getChart(document.querySelector('div.cost-chart canvas'))"
        ".data.datasets[0].data"
    )
    assert cost == ["5.00"]
    page.screenshot(path=str(screenshot_dir / "admin-dashboard.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/organization/switch/")
    page.click("text=Work here")  # the only organization that is not the current one
    page.wait_for_selector("#metron-dashboard")
    assert page.inner_text("[data-kpi=customers]") == "0"
    assert page.title().startswith("Beta Labs")
