"""The calculator's inputs for a period, aggregated in SQL from the economics aggregates.

A calendar month reads its month tables (one row per customer × feature and per customer ×
model); any other range sums the day tables. Nothing here loops over ledger events.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Q, Sum

from accounts.models import Customer, CustomerPlan, Organization, Plan
from economics.models import (
    AggregatedDay,
    CustomerFeatureMonth,
    CustomerModelMonth,
    FeatureUserDay,
    FeatureUserMonth,
    PromptVersionDay,
    UsageDay,
)
from ingestion.revenue_selectors import FxTable, revenue_by_customer_period, revenue_daily

ZERO = Decimal(0)


def is_calendar_month(start: date, end: date) -> bool:
    return start.day == 1 and end == (start + timedelta(days=32)).replace(day=1)


@dataclass
class CustomerInfo:
    pk: int
    external_id: str
    name: str
    internal: bool
    started_on: date | None
    region: str
    segment: str
    metadata: dict


@dataclass
class PlanInfo:
    pk: int
    code: str
    name: str
    price: Decimal
    interval: str
    is_free: bool


@dataclass
class PeriodInputs:
    """Everything the calculator needs for ``[start, end)``; money in USD (reporting)."""

    start: date
    end: date
    # (customer, plan, feature, billable) → [requests, tokens, cost, reconciled, billed]
    features: dict[tuple, list] = field(default_factory=dict)
    # (customer, plan, provider, model) → reconciled cost, billable traffic only
    models: dict[tuple, Decimal] = field(default_factory=dict)
    feature_users: dict[tuple[int | None, int | None], int] = field(default_factory=dict)
    feature_users_all_plans: dict[int | None, int] = field(default_factory=dict)
    plan_users: dict[int | None, int] = field(default_factory=dict)
    prompt_versions: list[tuple[int | None, str, int, Decimal]] = field(default_factory=list)
    days: list[tuple[date, Decimal, Decimal, Decimal, Decimal]] = field(default_factory=list)
    # (day, feature, billable reconciled cost): the feature trend
    feature_days: list[tuple[date, int | None, Decimal]] = field(default_factory=list)
    revenue: dict[int, Decimal] = field(default_factory=dict)
    revenue_by_day: dict[date, Decimal] = field(default_factory=dict)
    customers: dict[int, CustomerInfo] = field(default_factory=dict)
    plans: dict[int, PlanInfo] = field(default_factory=dict)
    plan_at_end: dict[int, int] = field(default_factory=dict)


def _customers(organization: Organization) -> dict[int, CustomerInfo]:
    fields = ("pk", "external_id", "name", "is_internal", "started_on", "region", "segment",
              "metadata")  # fmt: skip
    return {
        pk: CustomerInfo(pk, ext, name, internal, started, region or "", segment or "", meta or {})
        for pk, ext, name, internal, started, region, segment, meta in Customer.objects.filter(
            organization=organization
        ).values_list(*fields)
    }


def _plans(organization: Organization) -> dict[int, PlanInfo]:
    return {
        pk: PlanInfo(pk, code, name, price, interval, free)
        for pk, code, name, price, interval, free in Plan.objects.filter(
            organization=organization
        ).values_list("pk", "code", "name", "price", "interval", "is_free")
    }


def plans_in_force(organization: Organization, at: datetime) -> dict[int, int]:
    """Customer id → the plan id in force at ``at``."""
    return dict(
        CustomerPlan.objects.filter(organization=organization, valid_from__lte=at)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))
        .values_list("customer_id", "plan_id")
    )


def _month_usage(inputs: PeriodInputs, organization: Organization) -> None:
    rows = CustomerFeatureMonth.objects.filter(organization=organization, month=inputs.start)
    for row in rows.values_list(
        "customer_id", "plan_id", "feature_id", "billable", "requests", "tokens", "cost",
        "reconciled_cost", "billed_cost",
    ):  # fmt: skip
        inputs.features[row[:4]] = list(row[4:])
    models = CustomerModelMonth.objects.filter(
        organization=organization, month=inputs.start, billable=True
    ).values_list("customer_id", "plan_id", "provider", "model", "reconciled_cost")
    for customer, plan, provider, model, cost in models:
        inputs.models[(customer, plan, provider, model)] = cost
    _users(
        inputs,
        f"SELECT feature_id, plan_id, user_id FROM {FeatureUserMonth._meta.db_table} "
        "WHERE organization_id = %s AND month = %s",
        [organization.pk, inputs.start],
    )


def _range_usage(inputs: PeriodInputs, organization: Organization) -> None:
    days = UsageDay.objects.filter(
        organization=organization, day__gte=inputs.start, day__lt=inputs.end
    )
    totals = (
        days.values_list("customer_id", "plan_id", "feature_id", "billable")
        .annotate(
            sum_requests=Sum("requests"), sum_tokens=Sum("tokens"), sum_cost=Sum("cost"),
            sum_reconciled=Sum("reconciled_cost"),
            sum_billed=Sum("reconciled_cost", filter=Q(billed=True), default=ZERO),
        )
        .order_by()
    )  # fmt: skip
    for row in totals:
        inputs.features[row[:4]] = list(row[4:])
    models = (
        days.filter(billable=True)
        .values_list("customer_id", "plan_id", "provider", "model")
        .annotate(Sum("reconciled_cost"))
        .order_by()
    )
    for customer, plan, provider, model, cost in models:
        inputs.models[(customer, plan, provider, model)] = cost
    _users(
        inputs,
        f"SELECT DISTINCT feature_id, plan_id, user_id FROM {FeatureUserDay._meta.db_table} "
        "WHERE organization_id = %s AND day >= %s AND day < %s",
        [organization.pk, inputs.start, inputs.end],
    )


def _users(inputs: PeriodInputs, sql: str, params: list) -> None:
    """Distinct active users per (feature, plan), per feature and per plan, counted in SQL
    over ``sql`` (rows of feature, plan, user)."""
    with connection.cursor() as cursor:
        for grouping, target in (
            ("feature_id, plan_id", inputs.feature_users),
            ("feature_id", inputs.feature_users_all_plans),
            ("plan_id", inputs.plan_users),
        ):
            cursor.execute(
                f"SELECT {grouping}, count(DISTINCT user_id) FROM ({sql}) AS u GROUP BY {grouping}",
                params,
            )
            for *key, count in cursor.fetchall():
                target[tuple(key) if len(key) > 1 else key[0]] = count


def period_inputs(*, organization: Organization, start: date, end: date) -> PeriodInputs:
    """The calculator's inputs for ``[start, end)`` (dates, UTC days)."""
    inputs = PeriodInputs(start=start, end=end)
    if is_calendar_month(start, end):
        _month_usage(inputs, organization)
    else:
        _range_usage(inputs, organization)
    prompts = (
        PromptVersionDay.objects.filter(organization=organization, day__gte=start, day__lt=end)
        .values_list("feature_id", "prompt_version")
        .annotate(Sum("requests"), Sum("cost"))
        .order_by()
    )
    inputs.prompt_versions = list(prompts)
    inputs.days = list(
        AggregatedDay.objects.filter(organization=organization, day__gte=start, day__lt=end)
        .order_by("day")
        .values_list("day", "cost", "reconciled_cost", "billable_cost", "uninstrumented_cost")
    )
    inputs.feature_days = list(
        UsageDay.objects.filter(
            organization=organization, day__gte=start, day__lt=end, billable=True
        )
        .values_list("day", "feature_id")
        .annotate(day_cost=Sum("reconciled_cost"))
        .order_by()
    )
    inputs.customers = _customers(organization)
    inputs.plans = _plans(organization)
    end_moment = datetime.combine(end, time.min, tzinfo=UTC) - timedelta(microseconds=1)
    inputs.plan_at_end = plans_in_force(organization, end_moment)

    revenue: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for (customer, _), amount in revenue_by_customer_period(
        organization=organization, measure="recognized", start=start, end=end
    ).items():
        if customer is not None:
            revenue[customer] += amount
    inputs.revenue = dict(revenue)
    inputs.revenue_by_day = revenue_per_day(
        organization=organization, start=start, end=end, customers=inputs.customers
    )
    return inputs


def revenue_per_day(
    *, organization: Organization, start: date, end: date, customers: dict[int, CustomerInfo]
) -> dict[date, Decimal]:
    """Recognized revenue of non-internal customers per day, in the reporting currency."""
    fx = FxTable(organization)
    per_day: dict[date, Decimal] = defaultdict(lambda: ZERO)
    for customer, day, currency, amount in revenue_daily(
        organization=organization, measure="recognized", start=start, end=end
    ):
        info = customers.get(customer)
        if info is None or info.internal:
            continue
        per_day[day] += fx.to_reporting(amount, currency, day)
    return dict(per_day)


def monthly_history(
    *, organization: Organization, until: date
) -> list[tuple[int, date, Decimal, Decimal]]:
    """(customer, month, billable AI cost, recognized revenue) for every month before
    ``until`` that has either — the cohort inputs."""
    costs = (
        CustomerFeatureMonth.objects.filter(
            organization=organization, month__lt=until, billable=True, customer__isnull=False
        )
        .values_list("customer_id", "month")
        .annotate(Sum("reconciled_cost"))
        .order_by()
    )
    history: dict[tuple[int, date], list[Decimal]] = {
        (customer, month): [cost, ZERO] for customer, month, cost in costs
    }
    first = min((month for _, month in history), default=None)
    if first is not None:
        for (customer, month), amount in revenue_by_customer_period(
            organization=organization, measure="recognized", start=first, end=until
        ).items():
            if customer is not None:
                history.setdefault((customer, month), [ZERO, ZERO])[1] += amount
    return [(c, m, cost, revenue) for (c, m), (cost, revenue) in sorted(history.items())]
