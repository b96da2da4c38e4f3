"""What each dashboard page shows, built from one snapshot: periods, figures, table rows.

Values stay as the snapshot stores them (decimal strings or ``Decimal``, USD; ratios as
fractions of 1) so the CSV can be exact; ``tables`` rounds them for the screen.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse

from economics.calculations import ZERO, share
from economics.dashboards.tables import PROFITABILITY_LABELS, Column
from economics.formatting import count, money, percent, to_decimal
from economics.models import CustomerEconomics, EconomicsSnapshot

UNATTRIBUTED = "Unattributed"
ROLLING = EconomicsSnapshot.Kind.ROLLING_30D


# --- periods ------------------------------------------------------------------------------


def period_value(kind: str, start: date) -> str:
    """The ``?period=`` value of a snapshot: ``YYYY-MM`` or ``rolling_30d``."""
    return ROLLING.value if kind == ROLLING else f"{start:%Y-%m}"


def period_label(kind: str, start: date, end: date) -> str:
    """ "April 2026" or "Rolling 30 days, 13 Apr – 12 May 2026" (``end`` is exclusive)."""
    if kind != ROLLING:
        return f"{start:%B %Y}"
    last = end - timedelta(days=1)
    return f"Rolling 30 days, {start:%-d %b} – {last:%-d %b %Y}"


def period_slug(snapshot: EconomicsSnapshot) -> str:
    """The period in file names: ``2026-04`` or ``rolling-30d-to-2026-05-12``."""
    if snapshot.kind != ROLLING:
        return f"{snapshot.period_start:%Y-%m}"
    return f"rolling-30d-to-{snapshot.period_end - timedelta(days=1):%Y-%m-%d}"


def period_options(periods: Iterable[tuple[str, date, date]]) -> list[tuple[str, str]]:
    """(value, label) for the picker: the latest rolling 30 days, then every month."""
    rolling, months = [], []
    for kind, start, end in periods:
        if kind == ROLLING:
            if not rolling:  # ?period=rolling_30d always means the latest one
                rolling.append((period_value(kind, start), period_label(kind, start, end)))
        else:
            months.append((period_value(kind, start), period_label(kind, start, end)))
    return rolling + months


# --- links --------------------------------------------------------------------------------


def dashboard_url(name: str, snapshot: EconomicsSnapshot, *args: Any, **params: Any) -> str:
    """A dashboard page of the snapshot's period, with extra query ``params``."""
    query = {"period": period_value(snapshot.kind, snapshot.period_start), **params}
    query = {key: value for key, value in query.items() if value not in (None, "")}
    return f"{reverse(f'economics-{name}', args=args)}?{urlencode(query)}"


def events_url(
    snapshot: EconomicsSnapshot,
    *,
    customer_id: int | None = None,
    feature_id: int | None = None,
    unattributed_feature: bool = False,
    plan_id: int | None = None,
    provider: str | None = None,
    model: str | None = None,
) -> str:
    """The usage-event list filtered to the billable events behind a figure of the period
    (UTC days, ``[start, end)``), by the usage-event admin's own query parameters."""
    params: dict[str, Any] = {}
    if customer_id is not None:
        params["customer__id__exact"] = customer_id
    if feature_id is not None:
        params["feature__id__exact"] = feature_id
    elif unattributed_feature:
        params["feature__isnull"] = "True"
    if plan_id is not None:
        params["plan__id__exact"] = plan_id
    if provider:
        params["provider"] = provider
    if model:
        params["model"] = model
    params["billable__exact"] = "1"
    params["timestamp__gte"] = f"{snapshot.period_start.isoformat()}T00:00:00Z"
    params["timestamp__lt"] = f"{snapshot.period_end.isoformat()}T00:00:00Z"
    return f"{reverse('admin:ingestion_usageevent_changelist')}?{urlencode(params)}"


# --- overview -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    value: str
    footer: str = ""
    link: str | None = None


def coverage_text(summary: dict) -> str:
    """ "Attributed: 97.5 % to a feature · 100.0 % to a customer · 99.0 % to a plan"."""
    coverage = summary.get("coverage") or {}
    parts = [f"{percent(coverage.get(key))} to a {key}" for key in ("feature", "customer", "plan")]
    return "Attributed: " + " · ".join(parts)


def overview_figures(snapshot: EconomicsSnapshot) -> list[Figure]:
    """The overview's figure cards, in reading order."""
    summary = snapshot.summary
    policy = snapshot.policy or {}
    underwater_from = percent(policy.get("underwater_threshold"), places=0)
    at_risk_from = percent(policy.get("at_risk_threshold"), places=0)
    customers = summary.get("customers", 0)
    coverage = coverage_text(summary)
    return [
        Figure(
            "revenue", "Revenue (recognized)", money(summary.get("revenue")),
            f"{count(customers)} customer{'s' if customers != 1 else ''}",
            dashboard_url("customers", snapshot),
        ),
        Figure(
            "ai-cost", "AI cost", money(summary.get("ai_cost")), coverage,
            dashboard_url("features", snapshot),
        ),
        Figure(
            "provisional-share", "Provisional cost share",
            percent(share(_d(summary.get("provisional_cost")), _d(summary.get("ai_cost")))),
            f"{money(summary.get('provisional_cost'))} not yet on a provider bill",
        ),
        Figure(
            "cost-to-serve", "Cost-to-serve", money(summary.get("cost_to_serve")),
            f"AI cost + {money(summary.get('overhead'))} overhead · {coverage}",
        ),
        Figure(
            "contribution-margin", "Contribution margin", money(summary.get("contribution_margin")),
            "Revenue − cost-to-serve",
            dashboard_url("customers", snapshot, o="contribution_margin"),
        ),
        Figure(
            "contribution-margin-pct", "Contribution margin %",
            percent(summary.get("contribution_margin_pct")),
            f"AI cost ratio {percent(summary.get('cost_ratio'))}",
        ),
        Figure(
            "underwater", "Underwater accounts", count(summary.get("underwater", 0)),
            f"AI cost ≥ {underwater_from} of revenue",
            dashboard_url("customers", snapshot, underwater="yes"),
        ),
        Figure(
            "at-risk", "At-risk accounts", count(summary.get("at_risk", 0)),
            f"AI cost ratio from {at_risk_from}, below margin-negative",
            dashboard_url("customers", snapshot, band="at_risk"),
        ),
    ]  # fmt: skip


def _d(value) -> Decimal:
    """A snapshot amount as a ``Decimal`` (0 when missing)."""
    number = to_decimal(value)
    return ZERO if number is None else number


def plan_stats(plan: dict) -> str:
    """ "Median $12.00 · P95 $80.00 · tail from $40.00: 3 accounts (10.0 % of accounts,
    45.0 % of cost)"."""
    text = f"Median {money(plan.get('cost_median'))} · P95 {money(plan.get('cost_p95'))}"
    if plan.get("tail_threshold") is None:
        return f"{text} · no tail (the plan has no price)"
    return (
        f"{text} · tail from {money(plan.get('tail_threshold'))}: "
        f"{_accounts(plan.get('tail_accounts'))} ({percent(plan.get('tail_account_share'))} "
        f"of accounts, {percent(plan.get('tail_cost_share'))} of cost)"
    )


def _accounts(number: int | None) -> str:
    return f"{count(number)} account{'' if number == 1 else 's'}"


def ledger_lines(summary: dict) -> list[tuple[str, str]]:
    """Where the period's ledger cost went, so its total can be checked against the ledger."""
    return [
        ("Ledger cost, every environment and account", money(summary.get("ledger_cost"))),
        ("Customers (billable)", money(summary.get("ai_cost"))),
        ("Internal / test accounts, non-production", money(summary.get("non_billable_cost"))),
        ("Events without a customer", money(summary.get("unattributed_cost"))),
        ("Provider bills no event accounts for", money(summary.get("uninstrumented_cost"))),
    ]


# --- customers ----------------------------------------------------------------------------

CUSTOMER_COLUMNS = (
    Column("customer_id", "Customer id", screen=False),
    Column("name", "Customer", sort="name"),
    Column("plan", "Plan code", screen=False),
    Column("plan_name", "Plan", sort="plan", csv=False),
    Column("ai_cost", "AI cost", "money", sort="ai_cost"),
    Column("provisional_cost", "Provisional", "money", screen=False),
    Column("overhead", "Overhead", "money", screen=False),
    Column("cost_to_serve", "Cost-to-serve", "money", sort="cost_to_serve"),
    Column("revenue", "Revenue", "money", sort="revenue"),
    Column("cost_ratio", "AI cost ratio", "percent", sort="cost_ratio"),
    Column("contribution_margin", "Margin", "money", sort="contribution_margin"),
    Column("contribution_margin_pct", "Margin %", "percent", sort="contribution_margin_pct"),
    Column("band", "Band", "band"),
    # On screen these two are second lines under band and margin % (the table stays narrow).
    Column("underwater", "Underwater", "flag", screen=False),
    Column("profitability", "Profitability", "profitability", screen=False),
    Column("requests", "Requests", "int", screen=False),
    Column("tokens", "Tokens", "int", screen=False),
    Column("cost_change", "Δ AI cost", "money_change", sort="cost_change"),
    Column("margin_change", "Δ margin", "money_change", screen=False),
    Column("ratio_change", "Δ AI cost ratio", "percent_change", screen=False),
    Column("top_features", "Top features", "list"),
)


def feature_name(item: dict) -> str:
    return item.get("name") or item.get("feature") or UNATTRIBUTED


def customer_row(row: CustomerEconomics, snapshot: EconomicsSnapshot) -> dict[str, Any]:
    """One customer's figures (needs ``customer`` and ``plan`` selected with the row)."""
    return {
        "customer_id": row.customer.external_id,
        "name": row.customer.name or row.customer.external_id,
        "plan": row.plan.code if row.plan else None,
        "plan_name": row.plan.name if row.plan else None,
        **{
            field: getattr(row, field)
            for field in (
                "ai_cost",
                "provisional_cost",
                "overhead",
                "cost_to_serve",
                "revenue",
                "cost_ratio",
                "contribution_margin",
                "contribution_margin_pct",
                "band",
                "underwater",
                "profitability",
                "requests",
                "tokens",
                "cost_change",
                "margin_change",
                "ratio_change",
            )
        },  # fmt: skip
        "top_features": [feature_name(item) for item in (row.feature_costs or [])[:3]],
        "_links": {"name": dashboard_url("customer", snapshot, row.customer_id)},
        "_sub": {
            "name": row.customer.external_id,
            "band": "Underwater" if row.underwater else None,
            "contribution_margin_pct": PROFITABILITY_LABELS.get(row.profitability, ("",))[0],
        },
    }


def customer_rows(
    rows: Iterable[CustomerEconomics], snapshot: EconomicsSnapshot
) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield customer_row(row, snapshot)


CUSTOMER_BADGE_COLUMNS = (
    Column("band", "Band", "band"),
    Column("profitability", "Profitability", "profitability"),
)
CUSTOMER_FEATURE_COLUMNS = (
    Column("feature", "Feature key", screen=False),
    Column("name", "Feature"),
    Column("cost", "AI cost", "money"),
    Column("share", "Share of the customer's AI cost", "percent"),
    Column("events", "Events", csv=False),
)


def customer_feature_rows(row: CustomerEconomics, snapshot: EconomicsSnapshot) -> list[dict]:
    """The customer's cost by feature, each linked to the events behind it."""
    result = []
    for item in row.feature_costs or []:
        link = events_url(
            snapshot,
            customer_id=row.customer_id,
            feature_id=item.get("feature_id"),
            unattributed_feature=item.get("feature_id") is None,
        )
        result.append(
            {
                "feature": item.get("feature"),
                "name": feature_name(item),
                "cost": item.get("cost"),
                "share": share(_d(item.get("cost")), row.ai_cost),
                "events": "Events →",
                "_links": {"name": link, "events": link},
            }
        )
    return result


CUSTOMER_FIGURE_FIELDS = (
    ("ai_cost", "AI cost", "money"),
    ("provisional_cost", "of which provisional", "money"),
    ("overhead", "Allocated overhead", "money"),
    ("cost_to_serve", "Cost-to-serve", "money"),
    ("revenue", "Revenue (recognized)", "money"),
    ("cost_ratio", "AI cost ratio", "percent"),
    ("contribution_margin", "Contribution margin", "money"),
    ("contribution_margin_pct", "Contribution margin %", "percent"),
)


def customer_figures(row: CustomerEconomics) -> list[Figure]:
    """A customer's figure cards."""
    text = {"money": money, "percent": percent}
    return [
        Figure(field.replace("_", "-"), title, text[kind](getattr(row, field)))
        for field, title, kind in CUSTOMER_FIGURE_FIELDS
    ]


def customer_changes(
    row: CustomerEconomics, previous: CustomerEconomics | None
) -> list[tuple[str, str, str, str]]:
    """(what, previous, now, change) for the figures that moved since the previous period."""
    lines = [
        ("AI cost", "ai_cost", money, row.cost_change, lambda v: money(v, signed=True)),
        ("Contribution margin", "contribution_margin", money, row.margin_change,
         lambda v: money(v, signed=True)),
        ("AI cost ratio", "cost_ratio", percent, row.ratio_change,
         lambda v: percent(v, signed=True)),
    ]  # fmt: skip
    return [
        (
            title,
            fmt(getattr(previous, field)) if previous else "—",
            fmt(getattr(row, field)),
            change_fmt(change) if change is not None else "—",
        )
        for title, field, fmt, change, change_fmt in lines
    ]


# --- features, plans, models, segments, cohorts -------------------------------------------

ALL_PLANS = "all"
EVERY_PLAN = "each"

FEATURE_COLUMNS = (
    Column("feature", "Feature key", screen=False),
    Column("name", "Feature"),
    Column("plan", "Plan code", screen=False),
    Column("plan_name", "Plan", csv=False),
    Column("cost", "AI cost", "money"),
    Column("invocations", "Invocations", "int"),
    Column("cost_per_invocation", "Cost / invocation", "unit_cost"),
    Column("active_users", "Active users", "int"),
    Column("cost_per_active_user", "Cost / active user", "money"),
    Column("plan_revenue_per_active_user", "Plan revenue / active user", "money"),
    Column("health_ratio", "Health ratio", "percent"),
    Column("band", "Band", "band"),
)


def plan_lookup(snapshot: EconomicsSnapshot) -> dict[str | None, dict]:
    """Plan code → its plans row (for names and ids)."""
    return {plan.get("plan"): plan for plan in snapshot.plans}


def feature_rows(snapshot: EconomicsSnapshot, plan: str = ALL_PLANS) -> list[dict]:
    """Feature rows of all plans together (``all``), of one plan code, or every plan
    (``each``), each linked to the events behind it."""
    plans = plan_lookup(snapshot)
    result = []
    for item in snapshot.features:
        if plan == ALL_PLANS and item.get("plan") is not None:
            continue
        if plan not in (ALL_PLANS, EVERY_PLAN) and item.get("plan") != plan:
            continue
        plan_row = plans.get(item.get("plan")) if item.get("plan") else None
        link = events_url(
            snapshot,
            feature_id=item.get("feature_id"),
            unattributed_feature=item.get("feature_id") is None,
            plan_id=plan_row.get("plan_id") if plan_row else None,
        )
        result.append(
            {
                **item,
                "name": feature_name(item),
                "plan_name": (plan_row or {}).get("name") or item.get("plan") or "All plans",
                "_links": {"name": link},
            }
        )
    return result


PROMPT_VERSION_COLUMNS = (
    Column("feature", "Feature"),
    Column("prompt_version", "Prompt version"),
    Column("requests", "Requests", "int"),
    Column("cost", "AI cost", "money"),
    Column("cost_per_request", "Cost / request", "unit_cost"),
)


def prompt_version_rows(snapshot: EconomicsSnapshot) -> list[dict]:
    return [
        {**item, "feature": item.get("feature") or UNATTRIBUTED}
        for item in snapshot.prompt_versions
    ]


PLAN_COLUMNS = (
    Column("plan", "Plan code", screen=False),
    Column("name", "Plan"),
    Column("price", "Price", "money", screen=False),  # on screen: under the name
    Column("accounts", "Accounts", "int"),
    Column("ai_cost", "AI cost", "money"),
    Column("revenue", "Revenue", "money"),
    Column("average_ai_cost", "AI cost / account", "money"),
    Column("average_revenue", "Revenue / account", "money", screen=False),  # under it
    Column("contribution_margin", "Margin", "money"),
    Column("contribution_margin_pct", "Margin %", "percent", screen=False),  # under it
    Column("cost_ratio", "AI cost ratio", "percent"),
    Column("band", "Band", "band"),
    Column("cost_stddev", "Std dev of cost", "money", screen=False),
    Column("cost_median", "Median cost", "money"),
    Column("cost_p95", "P95 cost", "money", screen=False),  # on screen: under the median
    Column("tail_threshold", "Tail from", "money", screen=False),
    Column("tail_accounts", "Tail accounts", "int", screen=False),
    Column("tail_account_share", "Tail share of accounts", "percent", screen=False),
    Column("tail_cost_share", "Tail share of cost", "percent", screen=False),
    Column("tail", "Tail", csv=False, wrap=True),
    Column("overconsuming", "Overconsuming accounts", "list", screen=False),
)


def plan_rows(snapshot: EconomicsSnapshot) -> list[dict]:
    """Plan rows, each linked to that plan's customers; the tail reads as one cell."""
    result = []
    for item in snapshot.plans:
        link = dashboard_url("customers", snapshot, plan=item.get("plan"))
        if item.get("tail_threshold") is None:
            tail, tail_sub = "—", "no price"
        else:
            tail = f"{_accounts(item.get('tail_accounts'))} from {money(item['tail_threshold'])}"
            tail_sub = (
                f"{percent(item.get('tail_account_share'))} of accounts · "
                f"{percent(item.get('tail_cost_share'))} of cost"
            )
        result.append(
            {
                **item,
                "tail": tail,
                "_links": {"name": link},
                "_sub": {
                    "name": f"{money(item.get('price'))} list price",
                    "cost_median": f"P95 {money(item.get('cost_p95'))}",
                    "contribution_margin": percent(item.get("contribution_margin_pct")),
                    "average_ai_cost": f"revenue {money(item.get('average_revenue'))}",
                    "tail": tail_sub,
                },
            }
        )
    return result


MODEL_COLUMNS = (
    Column("provider", "Provider"),
    Column("model", "Model"),
    Column("customers", "Customers", "int"),
    Column("cost", "AI cost", "money"),
    Column("revenue", "Allocated revenue", "money"),
    Column("margin", "Margin", "money"),
    Column("margin_pct", "Margin %", "percent"),
    Column("cost_ratio", "AI cost ratio", "percent"),
    Column("band", "Band", "band"),
)


def model_rows(snapshot: EconomicsSnapshot) -> list[dict]:
    """Model rows, each linked to the model's events of the period."""
    return [
        {
            **item,
            "_links": {
                "model": events_url(
                    snapshot, provider=item.get("provider"), model=item.get("model")
                )
            },
        }
        for item in snapshot.model_margins
    ]


SEGMENT_COLUMNS = (
    Column("dimension", "Dimension", screen=False),
    Column("key", "Segment"),
    Column("customers", "Customers", "int"),
    Column("cost", "AI cost", "money"),
    Column("revenue", "Allocated revenue", "money"),
    Column("margin", "Margin", "money"),
    Column("margin_pct", "Margin %", "percent"),
    Column("cost_ratio", "AI cost ratio", "percent"),
    Column("band", "Band", "band"),
)


def segment_dimensions(snapshot: EconomicsSnapshot) -> list[str]:
    return list((snapshot.segments or {}).get("dimensions", {}))


def dimension_label(dimension: str) -> str:
    """ "plan_tier" → "Plan tier", "metadata.tier" → "Metadata: tier"."""
    if dimension.startswith("metadata."):
        return f"Metadata: {dimension.removeprefix('metadata.')}"
    return dimension.replace("_", " ").capitalize()


def segment_rows(snapshot: EconomicsSnapshot, dimension: str) -> list[dict]:
    rows = (snapshot.segments or {}).get("dimensions", {}).get(dimension, [])
    return [{**item, "dimension": dimension, "key": item.get("key") or "(none)"} for item in rows]


COHORT_CSV_COLUMNS = (
    Column("start_month", "Start month"),
    Column("cohort_customers", "Customers at start", "int"),
    Column("month", "Month", "int"),
    Column("customers", "Customers", "int"),
    Column("revenue", "Revenue", "money"),
    Column("cost", "AI cost", "money"),
    Column("margin", "Margin", "money"),
    Column("margin_pct", "Margin %", "percent"),
)


def cohort_long_rows(snapshot: EconomicsSnapshot) -> list[dict]:
    """One row per (cohort, month of life), for the CSV."""
    return [
        {"start_month": cohort["start_month"], "cohort_customers": cohort["customers"], **point}
        for cohort in snapshot.cohorts
        for point in cohort.get("points", [])
    ]


def cohort_grid(snapshot: EconomicsSnapshot) -> tuple[Sequence[Column], list[dict]]:
    """Columns and rows of the cohort grid: margin % per month of life, margin $ beneath."""
    months = max((len(cohort.get("points", [])) for cohort in snapshot.cohorts), default=0)
    columns = [
        Column("start_month", "Start month"),
        Column("customers", "Customers", "int"),
        *(Column(f"m{n}", f"Month {n}", "percent") for n in range(1, months + 1)),
    ]
    rows = []
    for cohort in snapshot.cohorts:
        row = {"start_month": cohort["start_month"], "customers": cohort["customers"], "_sub": {}}
        for point in cohort.get("points", []):
            key = f"m{point['month']}"
            row[key] = point.get("margin_pct")
            row["_sub"][key] = money(point.get("margin"))
        rows.append(row)
    return columns, rows
