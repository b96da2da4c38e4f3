"""The review workflow in a real browser: ops triages a finding and requests a repricing;
finance, a different person, approves it; the trail is on the item's page.

Skipped (with the reason) when the machine has no Chromium; see ``tests/browser/conftest.py``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from accounts.models import Role
from findings.models import (
    FindingConfidence,
    FindingKind,
    FindingStatus,
    RemediationItem,
    RemediationKind,
    RemediationState,
)
from tests.accounts.factories import PASSWORD, OrganizationFactory, PlanFactory
from tests.findings.workflow_builders import finding_create, member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Git-ignored: the reviewer opens the latest screenshots here.
REVIEW_SCREENSHOTS = Path(__file__).resolve().parents[2] / ".metron" / "screenshots"
SERIES = [
    {"day": f"2026-02-{day:02d}", "cost": f"{Decimal(30) + Decimal(day) / 4:.2f}"}
    for day in range(1, 29)
]
CHART_JS = """() => [...document.querySelectorAll("[data-evidence-chart] canvas")].map((c) => {
    const chart = Chart.getChart(c);
    return {
        drawn: Boolean(chart),
        labels: chart ? chart.data.labels : null,
        data: chart ? chart.data.datasets.map((d) => d.data) : null,
        width: c.getBoundingClientRect().width,
    };
})"""


@pytest.fixture
def workflow(roles):
    acme = OrganizationFactory(name="Acme AI", slug="acme")
    enterprise = PlanFactory(
        organization=acme, code="enterprise", name="Enterprise", price=Decimal("4999.00")
    )
    finding = finding_create(
        acme, kind=FindingKind.FREE_TIER_SUBSIDY, plan=enterprise,
        title="Enterprise accounts cost more in AI than the plan carries",
        monthly_savings=Decimal("2400.00"), confidence=FindingConfidence.HIGH,
        confidence_reason="Read from the economics snapshot of the window.",
        remediation="Reprice Enterprise for its heaviest accounts.",
        remediation_kind=RemediationKind.QUOTA, provider="", model="",
        evidence={"formula": "monthly_savings = Σ (AI cost × 30 ÷ days − allowance)",
                  "accounts": 3, "allowance_per_account": "5.00", "series": SERIES},
    )  # fmt: skip
    return {
        "organization": acme,
        "finding": finding,
        "plan": enterprise,
        "ops": member(acme, Role.OPS, username="olivia"),
        "finance": member(acme, Role.FINANCE, username="fiona"),
    }


def login(browser, live_server, username: str, next_url: str):
    page = browser.new_context(viewport={"width": 1440, "height": 1100}).new_page()
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    return page


def shoot(page, name: str, tmp_path) -> None:
    REVIEW_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(REVIEW_SCREENSHOTS / name), full_page=True)
    page.screenshot(path=str(tmp_path / name), full_page=True)
    assert (tmp_path / name).stat().st_size > 10_000


def test_ops_triage_and_request_a_repricing_then_finance_approves(
    live_server, browser, workflow, tmp_path
):
    finding = workflow["finding"]

    # --- ops: the queue, the finding's evidence, acknowledge ---------------------------------
    ops = login(browser, live_server, "olivia", "/admin/findings/finding/")
    ops.wait_for_selector("[data-findings-summary]")
    assert ops.inner_text("[data-identified]") == "1 finding · $2,400.00/mo identified"
    shoot(ops, "findings-triage-list.png", tmp_path)

    ops.click(f"text={finding.title}")
    ops.wait_for_selector(f"[data-finding-panel='{finding.pk}']")
    ops.wait_for_function(
        "() => window.Chart && [...document.querySelectorAll('[data-evidence-chart] canvas')]"
        ".every((canvas) => Chart.getChart(canvas))"
    )
    (chart,) = ops.evaluate(CHART_JS)
    # What Chart.js draws is the evidence's daily series, exactly.
    assert chart["labels"] == [point["day"] for point in SERIES]
    assert chart["data"] == [[point["cost"] for point in SERIES]]
    assert chart["width"] > 200
    assert "Σ (AI cost × 30 ÷ days − allowance)" in ops.inner_text("[data-formula]")

    ops.click("form[data-triage-action=acknowledge] button")
    ops.wait_for_selector("[data-status=acknowledged]")
    assert "Acknowledged: the finding is now acknowledged." in ops.inner_text("body")
    finding.refresh_from_db()
    assert finding.status == FindingStatus.ACKNOWLEDGED
    shoot(ops, "findings-finding-acknowledged.png", tmp_path)

    # --- ops: request a repricing and submit it ----------------------------------------------
    ops.click("[data-request-remediation]")
    ops.wait_for_selector("[data-request-form]")
    assert ops.input_value("select[name=kind]") == RemediationKind.QUOTA  # the suggestion
    ops.select_option("select[name=kind]", RemediationKind.REPRICE_PLAN)
    ops.fill("input[name=title]", "Reprice Enterprise: $4,999 → $5,499")
    ops.fill("input[name=estimated_monthly_savings]", "1500.00")
    ops.fill(
        "textarea[name=parameters]",
        '{"plan": "enterprise", "current_price": "4999.00", "new_price": "5499.00"}',
    )
    ops.select_option("select[name=plan]", str(workflow["plan"].pk))
    shoot(ops, "findings-request-repricing.png", tmp_path)
    ops.click("button[name=_submit]")
    ops.wait_for_selector("[data-state=pending_approval]")

    item = RemediationItem.objects.get()
    assert (item.kind, item.state, item.requested_by) == (
        RemediationKind.REPRICE_PLAN, RemediationState.PENDING_APPROVAL, workflow["ops"],
    )  # fmt: skip
    assert item.needs_finance and item.finding == finding
    assert item.parameters["new_price"] == "5499.00"
    # The requester gets no approve button: someone else must (and finance, for pricing).
    assert ops.locator("form[data-item-action=approve]").count() == 0
    assert ops.inner_text("[data-requester]") == "olivia"
    shoot(ops, "findings-item-pending.png", tmp_path)

    # --- finance, another person: approve, and the trail is there ---------------------------
    item_url = f"/admin/findings/remediationitem/{item.pk}/change/"
    finance = login(browser, live_server, "fiona", item_url)
    finance.wait_for_selector(f"[data-item-panel='{item.pk}']")
    finance.wait_for_function(
        "() => window.Chart && [...document.querySelectorAll('[data-evidence-chart] canvas')]"
        ".every((canvas) => Chart.getChart(canvas))"
    )
    assert finance.evaluate(CHART_JS)[0]["data"] == [[point["cost"] for point in SERIES]]
    finance.fill("form[data-item-action=approve] input[name=reason]", "Within the pricing policy")
    finance.click("form[data-item-action=approve] button")
    finance.wait_for_selector("[data-state=approved]")
    assert "Approved: “Reprice Enterprise: $4,999 → $5,499” is now approved." in finance.inner_text(
        "body"
    )

    item.refresh_from_db()
    assert item.state == RemediationState.APPROVED
    assert [(t.from_state, t.to_state, t.actor.username) for t in item.transitions.all()] == [
        ("", "draft", "olivia"),
        ("draft", "pending_approval", "olivia"),
        ("pending_approval", "approved", "fiona"),
    ]
    body = finance.inner_text("body")
    for line in ("∅ → draft", "draft → pending_approval", "pending_approval → approved"):
        assert line in body
    assert "Within the pricing policy" in body  # the approval's note, in the approvals inline
    # Approved: nothing on the page is editable any more.
    assert finance.locator("input[name=title], textarea[name=description]").count() == 0
    shoot(finance, "findings-item-approved.png", tmp_path)

    # The same trail, in the transition log's own list.
    finance.goto(f"{live_server.url}/admin/findings/remediationtransition/")
    finance.wait_for_selector("#result_list")
    assert finance.locator("#result_list tbody tr").count() == 3
