"""Period snapshots: the calculator run over a period's aggregates, stored with its "as of".

:func:`economics_recompute` computes one period; :func:`economics_refresh` follows the
ledger's change markers, rebuilds the changed days and recomputes the periods they touch.
Figures stored as JSON keep money as decimal strings (``economics/SNAPSHOTS.md``).
"""

from __future__ import annotations

import time as clock
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Feature, Organization
from economics import calculations as calc
from economics.models import CustomerEconomics, EconomicsSnapshot
from economics.selectors import calculation_policy, economics_policy_get
from economics.selectors_inputs import PeriodInputs, monthly_history, period_inputs
from economics.services.aggregates import usage_days_refresh, usage_months_rebuild

ZERO = Decimal(0)
ROLLING_DAYS = 30
DISTRIBUTION_BINS = 10
REVENUE_ALLOCATION = (
    "A customer's recognized revenue is split over the models (or segment values) it used in "
    "proportion to its AI cost on each, in cents; revenue of customers with no usage stays "
    "under 'unallocated'. Overhead is not split by model or segment."
)
Kind = EconomicsSnapshot.Kind


def money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def month_bounds(month: date) -> tuple[date, date]:
    start = month.replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1)


def period_bounds(kind: str, period_start: date | None, today: date) -> tuple[date, date]:
    """[start, end) of a period: a calendar month, or the 30 full days before ``today``."""
    if kind == Kind.MONTH:
        return month_bounds(period_start or today)
    end = today if period_start is None else period_start + timedelta(days=ROLLING_DAYS)
    return end - timedelta(days=ROLLING_DAYS), end


# --- the calculation ------------------------------------------------------------------


@dataclass
class _Customers:
    usage: list[calc.CustomerUsage] = field(default_factory=list)
    feature_costs: dict[int, dict[int | None, Decimal]] = field(default_factory=dict)
    provisional: dict[int, Decimal] = field(default_factory=dict)  # USD no bill covers yet


def _customer_usage(inputs: PeriodInputs) -> _Customers:
    """One calculator row per customer with billable usage or revenue."""
    cost: dict[int, Decimal] = defaultdict(lambda: ZERO)
    provisional: dict[int, Decimal] = defaultdict(lambda: ZERO)
    requests: dict[int, int] = defaultdict(int)
    tokens: dict[int, int] = defaultdict(int)
    per_feature: dict[int, dict[int | None, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for (customer, _, feature, billable), sums in inputs.features.items():
        if not billable or customer is None:
            continue
        count, used, _, reconciled, billed = sums
        cost[customer] += reconciled
        provisional[customer] += reconciled - billed
        requests[customer] += count
        tokens[customer] += used
        per_feature[customer][feature] += reconciled
    result = _Customers()
    for customer in sorted(cost.keys() | inputs.revenue.keys()):
        info = inputs.customers.get(customer)
        if info is None:
            continue
        result.usage.append(
            calc.CustomerUsage(
                customer=customer,
                plan=inputs.plan_at_end.get(customer),
                ai_cost=cost.get(customer, ZERO),
                revenue=inputs.revenue.get(customer, ZERO),
                requests=requests.get(customer, 0),
                tokens=tokens.get(customer, 0),
                internal=info.internal,
                feature_costs=dict(per_feature.get(customer, {})),
            )
        )
        result.feature_costs[customer] = dict(per_feature.get(customer, {}))
    result.provisional = dict(provisional)
    return result


def _distribution(costs: list[Decimal]) -> list[dict[str, Any]]:
    """Equal-width bins of per-account cost from 0 to the highest, for the chart."""
    if not costs:
        return []
    top = max(costs)
    if top <= 0:
        return [{"lo": "0", "hi": "0", "accounts": len(costs)}]
    width = top / DISTRIBUTION_BINS
    counts = [0] * DISTRIBUTION_BINS
    for cost in costs:
        counts[min(int(cost / width), DISTRIBUTION_BINS - 1) if cost > 0 else 0] += 1
    return [
        {"lo": money(width * i), "hi": money(width * (i + 1)), "accounts": count}
        for i, count in enumerate(counts)
    ]


def _band(value) -> str | None:
    return None if value is None else str(value)


def _feature_label(features_by_pk, feature):
    if feature is None:
        return None, "Unattributed"
    key, name = features_by_pk.get(feature, (str(feature), str(feature)))
    return key, name


@dataclass
class Computed:
    """What one period's computation produced, ready to store."""

    summary: dict
    customers: list[tuple[calc.CustomerEconomics, Decimal]]
    feature_costs: dict[int, dict[int | None, Decimal]]
    features: list[dict]
    plans: list[dict]
    model_margins: list[dict]
    segments: dict
    cohorts: list[dict]
    trend: list[dict]
    feature_trend: dict
    prompt_versions: list[dict]


def compute_period(
    *,
    organization: Organization,
    inputs: PeriodInputs,
    policy: calc.Policy,
    previous: Iterable[Any] = (),
    history: list[tuple[int, date, Decimal, Decimal]] | None = None,
    features_by_pk: dict[int, tuple[str, str]],
) -> Computed:
    """Run the calculator over a period's inputs (no queries here)."""
    customers = _customer_usage(inputs)
    report = calc.customer_economics(customers.usage, policy, previous=previous)
    provisional = customers.provisional
    plans_by_pk = inputs.plans
    ext = {pk: info.external_id for pk, info in inputs.customers.items()}

    # Features, by plan tier (the plan at event time) and over all plans.
    feature_cost: dict[tuple, Decimal] = defaultdict(lambda: ZERO)
    feature_calls: dict[tuple, int] = defaultdict(int)
    for (customer, plan, feature, billable), sums in inputs.features.items():
        info = inputs.customers.get(customer)
        if not billable or info is None or info.internal:
            continue
        for key in ((feature, plan), (feature, None)):
            feature_cost[key] += sums[3]
            feature_calls[key] += sums[0]
    plan_revenue: dict[int | None, Decimal] = defaultdict(lambda: ZERO)
    for row in report.customers:
        plan_revenue[row.plan] += row.revenue
        plan_revenue[None] += row.revenue
    # A plan's revenue per active user: its customers' revenue over the distinct end users
    # active on any feature under it; all plans together: every plan's users added up.
    users = {**inputs.plan_users, None: sum(inputs.plan_users.values())}
    rpu = {
        plan: calc.revenue_per_active_user(plan_revenue.get(plan, ZERO), users.get(plan, 0))
        for plan in plan_revenue.keys() | users.keys()
    }
    feature_rows = calc.feature_economics(
        [
            calc.FeatureUsage(
                feature=feature, plan=plan, cost=feature_cost[(feature, plan)],
                invocations=feature_calls[(feature, plan)],
                active_users=(
                    inputs.feature_users.get((feature, plan), 0) if plan is not None
                    else inputs.feature_users_all_plans.get(feature, 0)
                ),
            )
            for feature, plan in feature_cost
        ],
        {plan: value for plan, value in rpu.items() if value is not None},
        policy,
    )  # fmt: skip
    features = []
    for row in feature_rows:
        key, name = _feature_label(features_by_pk, row.feature)
        plan = plans_by_pk.get(row.plan)
        features.append({
            "feature_id": row.feature, "feature": key, "name": name,
            "plan": plan.code if plan else None, "cost": money(row.cost),
            "invocations": row.invocations, "active_users": row.active_users,
            "cost_per_invocation": money(row.cost_per_invocation),
            "cost_per_active_user": money(row.cost_per_active_user),
            "plan_revenue_per_active_user": money(row.plan_revenue_per_active_user),
            "health_ratio": money(row.health_ratio), "band": _band(row.band),
        })  # fmt: skip

    # Plans: customers under the plan in force at the period's end.
    prices = {pk: calc.monthly_price(info.price, info.interval) for pk, info in plans_by_pk.items()}
    plans = []
    for row in calc.plans_from_customers(report.customers, prices, policy):
        info = plans_by_pk.get(row.plan)
        costs = [c.ai_cost for c in report.customers if c.plan == row.plan]
        plans.append({
            "plan_id": row.plan, "plan": info.code if info else None,
            "name": info.name if info else "No plan", "price": money(row.price),
            "accounts": row.accounts, "ai_cost": money(row.ai_cost),
            "revenue": money(row.revenue), "average_ai_cost": money(row.average_ai_cost),
            "average_revenue": money(row.average_revenue),
            "contribution_margin": money(row.contribution_margin),
            "contribution_margin_pct": money(row.contribution_margin_pct),
            "cost_ratio": money(row.cost_ratio), "band": _band(row.band),
            "cost_stddev": money(row.cost_stddev), "cost_median": money(row.cost_median),
            "cost_p95": money(row.cost_p95), "tail_threshold": money(row.tail_threshold),
            "tail_accounts": row.tail_accounts,
            "tail_account_share": money(row.tail_account_share),
            "tail_cost_share": money(row.tail_cost_share),
            "overconsuming": [ext.get(a.customer) for a in row.overconsuming or ()],
            "distribution": _distribution(costs),
        })  # fmt: skip

    # Models and segments: revenue allocated by each customer's cost share.
    revenue = {row.customer: row.revenue for row in report.customers}
    model_usage = [
        calc.DimensionUsage(customer, f"{provider}/{model}", cost)
        for (customer, _, provider, model), cost in inputs.models.items()
        if customer in revenue
    ]
    model_margins = []
    for row in calc.margin_by_dimension(model_usage, revenue, policy):
        provider, _, model = str(row.key).partition("/")
        model_margins.append({
            "provider": provider if row.key != calc.UNALLOCATED else None,
            "model": model if row.key != calc.UNALLOCATED else calc.UNALLOCATED,
            "customers": row.customers, "cost": money(row.cost), "revenue": money(row.revenue),
            "margin": money(row.margin), "margin_pct": money(row.margin_pct),
            "cost_ratio": money(row.cost_ratio), "band": _band(row.band),
        })  # fmt: skip
    segments = {"revenue_allocation": REVENUE_ALLOCATION, "dimensions": {}}
    dimensions = _segment_keys(inputs, report.customers, plans_by_pk)
    for dimension, key_of in dimensions.items():
        usage = [
            calc.DimensionUsage(row.customer, key_of(row), row.ai_cost) for row in report.customers
        ]
        segments["dimensions"][dimension] = [
            {
                "key": row.key, "customers": row.customers, "cost": money(row.cost),
                "revenue": money(row.revenue), "margin": money(row.margin),
                "margin_pct": money(row.margin_pct), "cost_ratio": money(row.cost_ratio),
                "band": _band(row.band),
            }
            for row in calc.margin_by_dimension(usage, revenue, policy)
        ]  # fmt: skip

    # Cohorts by start month (month 1 = the start month).
    cohorts = []
    if history is not None:
        rows = []
        for customer, month, cost, income in history:
            info = inputs.customers.get(customer)
            if info is None or info.started_on is None:
                continue
            rows.append(calc.CohortUsage(customer, info.started_on, month, income, cost,
                                         info.internal))  # fmt: skip
        for cohort in calc.cohort_margins(rows):
            cohorts.append({
                "start_month": cohort.start_month.strftime("%Y-%m"),
                "customers": cohort.customers,
                "points": [
                    {"month": p.month, "customers": p.customers, "revenue": money(p.revenue),
                     "cost": money(p.cost), "margin": money(p.margin),
                     "margin_pct": money(p.margin_pct)}
                    for p in cohort.points
                ],
            })  # fmt: skip

    # Margin over time: billable reconciled cost against recognized revenue, per day.
    width = calc.granularity(inputs.start, inputs.end)
    # Billable reconciled cost per day: the customer economics' cost, day by day.
    days = {day: billable for day, _, _, billable, _ in inputs.days}
    trend = [
        {
            "start": str(p.start), "end": str(p.end), "revenue": money(p.revenue),
            "cost": money(p.cost), "margin": money(p.margin),
            "margin_pct": money(p.margin_pct), "cost_ratio": money(p.cost_ratio),
        }
        for p in calc.margin_trend(
            [
                (day, inputs.revenue_by_day.get(day, ZERO), days.get(day, ZERO))
                for day in sorted(days.keys() | inputs.revenue_by_day.keys())
            ],
            inputs.start, inputs.end, width,
        )
    ]  # fmt: skip

    # Each feature's cost over the period, in the same adaptive buckets.
    by_feature: dict[int | None, list[tuple[date, Decimal]]] = defaultdict(list)
    for day, feature, cost in inputs.feature_days:
        by_feature[feature].append((day, cost))
    ranges = calc.buckets(inputs.start, inputs.end, width)
    feature_trend = {
        "granularity": str(width),
        "buckets": [[str(lo), str(hi)] for lo, hi in ranges],
        "series": {
            _feature_label(features_by_pk, feature)[0] or "unattributed": [
                money(bucket.total)
                for bucket in calc.bucket_sums(values, inputs.start, inputs.end, width)
            ]
            for feature, values in by_feature.items()
        },
    }

    prompt_versions = []
    for row in calc.cost_by_prompt_version(
        calc.PromptVersionUsage(feature, version, cost, requests)
        for feature, version, requests, cost in inputs.prompt_versions
    ):
        key, _ = _feature_label(features_by_pk, row.feature)
        prompt_versions.append({
            "feature_id": row.feature, "feature": key, "prompt_version": row.prompt_version,
            "requests": row.invocations, "cost": money(row.cost),
            "cost_per_request": money(row.cost_per_invocation),
        })  # fmt: skip

    summary = _summary(inputs, report, provisional, width, ext)
    customers_out = [(row, provisional.get(row.customer, ZERO)) for row in report.customers]
    return Computed(
        summary=summary, customers=customers_out, feature_costs=customers.feature_costs,
        features=features, plans=plans, model_margins=model_margins, segments=segments,
        cohorts=cohorts, trend=trend, feature_trend=feature_trend,
        prompt_versions=prompt_versions,
    )  # fmt: skip


def _segment_keys(inputs: PeriodInputs, rows, plans_by_pk) -> dict[str, Any]:
    """Segment dimensions: region, segment, plan tier and every customer metadata key."""
    info = inputs.customers

    def plan_tier(row):
        plan = plans_by_pk.get(row.plan)
        return plan.code if plan else "no plan"

    dimensions: dict[str, Any] = {
        "region": lambda row: info[row.customer].region or "unknown",
        "segment": lambda row: info[row.customer].segment or "unknown",
        "plan_tier": plan_tier,
    }
    keys = sorted({key for row in rows for key in info[row.customer].metadata})
    for key in keys:
        dimensions[f"metadata.{key}"] = lambda row, key=key: str(
            info[row.customer].metadata.get(key, "unknown")
        )
    return dimensions


def _summary(inputs: PeriodInputs, report, provisional, width, ext) -> dict:
    totals = report.summary.totals
    ledger_cost = sum((day[1] for day in inputs.days), ZERO)
    uninstrumented = sum((day[4] for day in inputs.days), ZERO)
    non_billable = ZERO
    unattributed = ZERO
    rows = []
    for (customer, plan, feature, billable), sums in inputs.features.items():
        cost = sums[3]
        info = inputs.customers.get(customer)
        if not billable or info is None or info.internal:
            non_billable += cost
            if customer is None:
                unattributed += cost
        rows.append(calc.CostAttribution(cost=cost, feature=feature, customer=customer, plan=plan))
    coverage = calc.attribution_coverage(rows)
    return {
        "currency": "USD",
        "granularity": str(width),
        "customers": report.summary.customers,
        "band_counts": {str(band): n for band, n in report.summary.band_counts.items()},
        "profitability_counts": {
            str(kind): n for kind, n in report.summary.profitability_counts.items()
        },
        "underwater": report.summary.underwater,
        "at_risk": report.summary.at_risk,
        "ai_cost": money(totals.ai_cost),
        "provisional_cost": money(sum(provisional.values(), ZERO)),
        "overhead": money(totals.overhead),
        "cost_to_serve": money(totals.cost_to_serve),
        "revenue": money(totals.revenue),
        "contribution_margin": money(totals.contribution_margin),
        "contribution_margin_pct": money(totals.contribution_margin_pct),
        "cost_ratio": money(totals.cost_ratio),
        "band": str(totals.band),
        "ledger_cost": money(ledger_cost),
        "non_billable_cost": money(non_billable),
        "unattributed_cost": money(unattributed),
        "uninstrumented_cost": money(uninstrumented),
        "coverage": {
            "feature": money(coverage.feature),
            "customer": money(coverage.customer),
            "plan": money(coverage.plan),
        },
        "top_by_cost_ratio": [
            {
                "customer_id": ext.get(row.customer),
                "name": inputs.customers[row.customer].name,
                "plan": inputs.plans[row.plan].code if row.plan in inputs.plans else None,
                "ai_cost": money(row.ai_cost),
                "revenue": money(row.revenue),
                "cost_ratio": money(row.cost_ratio),
                "band": str(row.band),
                "underwater": row.underwater,
            }
            for row in report.summary.top_by_cost_ratio
        ],  # fmt: skip
        "previous_period_start": None,
    }


# --- storing --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Previous:
    """A stored customer row in the shape the calculator's ``previous`` expects."""

    customer: int
    ai_cost: Decimal
    cost_to_serve: Decimal
    revenue: Decimal
    contribution_margin: Decimal
    contribution_margin_pct: Decimal | None
    cost_ratio: Decimal | None


def _previous_snapshot(organization, kind, start, end) -> EconomicsSnapshot | None:
    if kind == Kind.MONTH:
        previous_start = month_bounds(start - timedelta(days=1))[0]
    else:
        previous_start = start - timedelta(days=ROLLING_DAYS)
    return EconomicsSnapshot.objects.filter(
        organization=organization, kind=kind, period_start=previous_start
    ).first()


def economics_recompute(
    *,
    organization: Organization,
    kind: str = Kind.MONTH,
    period_start: date | None = None,
    now: datetime | None = None,
    refresh: bool = True,
) -> EconomicsSnapshot:
    """Compute and store the snapshot of one period (a calendar month by default: the
    current one; or the rolling 30 days ending today). Refreshes changed days first."""
    now = now or timezone.now()
    started = clock.monotonic()
    policy_row = economics_policy_get(organization=organization)
    if refresh:
        usage_days_refresh(organization=organization, reconciled=policy_row.use_reconciled_cost)
    start, end = period_bounds(kind, period_start, now.astimezone(UTC).date())
    month_days = (month_bounds(start)[1] - month_bounds(start)[0]).days
    policy = calculation_policy(policy_row, days=(end - start).days, month_days=month_days)
    inputs = period_inputs(organization=organization, start=start, end=end)
    previous_snapshot = _previous_snapshot(organization, kind, start, end)
    previous = []
    if previous_snapshot is not None:
        previous = [
            _Previous(row.customer_id, row.ai_cost, row.cost_to_serve, row.revenue,
                      row.contribution_margin, row.contribution_margin_pct, row.cost_ratio)
            for row in previous_snapshot.customers.all()
        ]  # fmt: skip
    features_by_pk = {
        pk: (key, name)
        for pk, key, name in Feature.objects.filter(organization=organization).values_list(
            "pk", "key", "name"
        )
    }
    computed = compute_period(
        organization=organization, inputs=inputs, policy=policy, previous=previous,
        history=monthly_history(organization=organization, until=end),
        features_by_pk=features_by_pk,
    )  # fmt: skip
    if previous_snapshot is not None:
        computed.summary["previous_period_start"] = str(previous_snapshot.period_start)
    policy_json = {
        "watch_threshold": str(policy.watch_threshold),
        "at_risk_threshold": str(policy.at_risk_threshold),
        "margin_negative_threshold": str(policy.margin_negative_threshold),
        "underwater_threshold": str(policy.underwater_threshold),
        "break_even_band": str(policy.break_even_band),
        "tail_ratio": money(policy.tail_ratio),
        "overhead_rule": str(policy.overhead_rule),
        "overhead": str(policy.overhead),
        "monthly_overhead": str(policy_row.monthly_overhead),
        "use_reconciled_cost": policy_row.use_reconciled_cost,
    }
    with transaction.atomic():
        snapshot, _ = EconomicsSnapshot.objects.select_for_update().update_or_create(
            organization=organization, kind=kind, period_start=start,
            defaults={
                "period_end": end, "as_of": now, "stale_since": None, "policy": policy_json,
                "summary": computed.summary, "features": computed.features,
                "plans": computed.plans, "model_margins": computed.model_margins,
                "segments": computed.segments, "cohorts": computed.cohorts,
                "trend": computed.trend, "feature_trend": computed.feature_trend,
                "prompt_versions": computed.prompt_versions,
            },
        )  # fmt: skip
        snapshot.customers.all().delete()
        CustomerEconomics.objects.bulk_create(
            [
                _customer_row(snapshot, row, provisional, computed.feature_costs, features_by_pk)
                for row, provisional in computed.customers
            ],
            batch_size=2000,
        )
        snapshot.duration_ms = int((clock.monotonic() - started) * 1000)
        snapshot.save(update_fields=["duration_ms"])
    return snapshot


def _customer_row(snapshot, row, provisional, feature_costs, features_by_pk):
    costs = sorted(
        feature_costs.get(row.customer, {}).items(), key=lambda item: (-item[1], item[0] or 0)
    )
    change = row.change
    return CustomerEconomics(
        snapshot=snapshot, organization_id=snapshot.organization_id, customer_id=row.customer,
        plan_id=row.plan, ai_cost=row.ai_cost, provisional_cost=provisional,
        overhead=row.overhead, cost_to_serve=row.cost_to_serve, revenue=row.revenue,
        cost_ratio=row.cost_ratio, contribution_margin=row.contribution_margin,
        contribution_margin_pct=row.contribution_margin_pct, band=str(row.band),
        underwater=row.underwater, profitability=str(row.profitability),
        feature_costs=[
            {"feature_id": feature, "feature": features_by_pk.get(feature, (None, None))[0],
             "name": features_by_pk.get(feature, (None, "Unattributed"))[1], "cost": str(cost)}
            for feature, cost in costs
        ],
        cost_change=change.ai_cost if change else None,
        margin_change=change.contribution_margin if change else None,
        ratio_change=change.cost_ratio if change else None,
    )  # fmt: skip


@dataclass
class EconomicsRefresh:
    days: list[date]
    snapshots: list[EconomicsSnapshot]


def economics_refresh(
    *, organization: Organization, now: datetime | None = None
) -> EconomicsRefresh:
    """Rebuild the days ingestion marked changed, then recompute the snapshots they touch
    (each month with a changed day, and the rolling 30 days when a changed day is in it)
    and those marked stale otherwise (a policy edit)."""
    now = now or timezone.now()
    policy = economics_policy_get(organization=organization)
    refreshed = usage_days_refresh(organization=organization, reconciled=policy.use_reconciled_cost)
    snapshots = []
    if refreshed.days:  # snapshots not recomputed below (older windows) keep the mark
        EconomicsSnapshot.objects.filter(
            organization=organization, stale_since__isnull=True,
            period_start__lte=max(refreshed.days), period_end__gt=min(refreshed.days),
        ).update(stale_since=now)  # fmt: skip
    today = now.astimezone(UTC).date()
    # Months with a changed day, and months whose figures went stale another way (a policy
    # edit): both are recomputed.
    months = set(refreshed.months) | set(
        EconomicsSnapshot.objects.filter(
            organization=organization, kind=Kind.MONTH, stale_since__isnull=False
        ).values_list("period_start", flat=True)
    )
    for month in sorted(months):
        snapshots.append(economics_recompute(organization=organization, period_start=month,
                                             now=now, refresh=False))  # fmt: skip
    rolling_start, rolling_end = period_bounds(Kind.ROLLING_30D, None, today)
    rolling_stale = EconomicsSnapshot.objects.filter(
        organization=organization, kind=Kind.ROLLING_30D, stale_since__isnull=False
    ).exists()
    if rolling_stale or any(rolling_start <= day < rolling_end for day in refreshed.days):
        snapshots.append(economics_recompute(organization=organization, kind=Kind.ROLLING_30D,
                                             now=now, refresh=False))  # fmt: skip
    return EconomicsRefresh(days=refreshed.days, snapshots=snapshots)


def economics_recompute_months(
    *, organization: Organization, months: Iterable[date], now: datetime | None = None
) -> list[EconomicsSnapshot]:
    """The full recompute: rebuild the months' aggregates from the rollups, then their
    snapshots (and the rolling 30 days)."""
    months = sorted({month.replace(day=1) for month in months})
    policy = economics_policy_get(organization=organization)
    usage_months_rebuild(
        organization=organization, months=months, reconciled=policy.use_reconciled_cost
    )
    return [
        economics_recompute(organization=organization, period_start=month, now=now, refresh=False)
        for month in months
    ]
