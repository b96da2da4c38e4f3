"""The ops start page in a real browser: login, figures, chart, organization switch."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import Role
from accounts.services import membership_set
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

    # The bar chart is drawn by Chart.js with one bar per plan.
    page.wait_for_function(
        "() => window.Chart && Chart.getChart(document.querySelector('canvas.chart'))"
    )
    chart = page.evaluate(
        "() => { const c = Chart.getChart(document.querySelector('canvas.chart'));"
        " return {labels: c.data.labels, data: c.data.datasets[0].data}; }"
    )
    assert chart == {"labels": ["Free", "Pro"], "data": [3, 2]}
    page.screenshot(path=str(screenshot_dir / "admin-dashboard.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/organization/switch/")
    page.click("text=Work here")  # the only organization that is not the current one
    page.wait_for_selector("#metron-dashboard")
    assert page.inner_text("[data-kpi=customers]") == "0"
    assert page.title().startswith("Beta Labs")
