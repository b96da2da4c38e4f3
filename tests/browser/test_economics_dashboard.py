"""The economics overview in a real browser: figures, every chart drawn with its numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from accounts.models import Role
from tests.accounts.factories import PASSWORD, MembershipFactory, OrganizationFactory
from tests.economics.builders import known_month

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Git-ignored: the reviewer opens the latest screenshots here.
REVIEW_SCREENSHOTS = Path(__file__).resolve().parents[2] / ".metron" / "screenshots"

CHARTS_JS = """() => [...document.querySelectorAll("canvas[data-economics-chart]")].map((c) => {
    const canvas = c;
    const chart = Chart.getChart(canvas);
    const box = canvas.getBoundingClientRect();
    return {
        id: canvas.id,
        width: box.width,
        height: box.height,
        drawn: Boolean(chart),
        labels: chart ? chart.data.labels : null,
        data: chart ? chart.data.datasets.map((dataset) => dataset.data) : null,
        markers: chart && chart.data.markers ? chart.data.markers.map((m) => [m.label, m.at]) : [],
        source: JSON.parse(document.getElementById(canvas.dataset.economicsChart).textContent),
    };
})"""


@pytest.fixture
def known(roles):
    acme = OrganizationFactory(name="Acme AI", slug="acme")
    known = known_month(acme)
    MembershipFactory(organization=acme, role=Role.FINANCE, user__username="fiona")
    return known


def login(page, live_server, next_url):
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("input[name=username]", "fiona")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_overview_draws_every_chart_with_the_snapshot_numbers(
    live_server, browser, known, tmp_path, screenshot_dir
):
    page = browser.new_page(viewport={"width": 1440, "height": 1100})
    login(page, live_server, "/admin/economics/overview/?period=2026-04")
    page.wait_for_selector("#economics-dashboard")
    page.wait_for_function(
        "() => window.Chart && [...document.querySelectorAll('canvas[data-economics-chart]')]"
        ".every((canvas) => Chart.getChart(canvas))"
    )

    figures = {
        key: page.inner_text(f"[data-figure={key}] [data-value]")
        for key in (
            "revenue", "ai-cost", "provisional-share", "cost-to-serve", "contribution-margin",
            "contribution-margin-pct", "underwater", "at-risk",
        )
    }  # fmt: skip
    assert figures == {
        "revenue": "$3,000.00", "ai-cost": "$2,762.35", "provisional-share": "14.5 %",
        "cost-to-serve": "$2,962.35", "contribution-margin": "$37.65",
        "contribution-margin-pct": "1.3 %", "underwater": "3", "at-risk": "1",
    }  # fmt: skip
    assert "97.5 % to a feature" in page.inner_text("[data-figure=ai-cost]")
    assert page.locator("[data-stale]").count() == 0

    charts = {chart["id"]: chart for chart in page.evaluate(CHARTS_JS)}
    assert sorted(charts) == [
        "chart-features", "chart-plan-0", "chart-plan-1", "chart-plan-2", "chart-trend",
        "chart-underwater",
    ]  # fmt: skip
    for chart in charts.values():
        assert chart["drawn"], chart["id"]
        assert chart["width"] > 100 and chart["height"] > 100, chart["id"]
        # What Chart.js draws is exactly what the page embedded.
        assert chart["labels"] == chart["source"]["data"]["labels"], chart["id"]
        assert chart["data"] == [d["data"] for d in chart["source"]["data"]["datasets"]]

    assert charts["chart-trend"]["data"] == [
        ["500.00", "1000.00", "1500.00"],
        ["450.00", "900.00", "1412.345678901234"],
        ["50.00", "100.00", "87.654321098766"],
    ]
    assert charts["chart-features"]["labels"] == ["Summarize", "Chat", "Unattributed"]
    assert charts["chart-features"]["data"] == [["1900.00", "850.00", "12.345678901234"]]
    assert charts["chart-underwater"]["labels"] == ["Northwind", "Globex", "Hooli"]
    assert charts["chart-underwater"]["data"] == [
        ["2400.00", "250.00", "12.345678901234"],
        ["2000.00", "500.00", "0.00"],
    ]
    assert charts["chart-plan-1"]["data"] == [[1, 0, 0, 0, 0, 0, 0, 0, 0, 1]]
    assert charts["chart-plan-1"]["markers"] == [
        ["Median", "4.5"], ["P95", "9.5"], ["Tail from", "6.166666666666666666666666667"],
    ]  # fmt: skip

    page.screenshot(path=str(tmp_path / "economics-overview.png"), full_page=True)
    REVIEW_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(REVIEW_SCREENSHOTS / "economics-overview.png"), full_page=True)
    assert (tmp_path / "economics-overview.png").stat().st_size > 10_000

    # The drill-down path, captured for review: plan → its customers → one customer.
    page.click("[data-plan=pro] h3 a")
    page.wait_for_selector("[data-table=customers]")
    plans = page.locator("[data-table=customers] td[data-col=plan_name]").all_inner_texts()
    assert [plan.strip() for plan in plans] == ["Pro", "Pro"]
    page.screenshot(path=str(REVIEW_SCREENSHOTS / "economics-customers.png"), full_page=True)
    page.click("text=Globex")
    page.wait_for_selector("[data-customer=cust_globex]")
    assert page.inner_text("[data-figure=cost-ratio] [data-value]") == "50.0 %"
    page.screenshot(path=str(REVIEW_SCREENSHOTS / "economics-customer.png"), full_page=True)
