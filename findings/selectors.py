"""Reads of the findings app: the policy, and the aggregations the detectors and alerts use.

Every aggregation runs in SQL (GROUP BY) over one organization and a half-open range of
UTC days ``[start, end)``: the daily rollups (``DailyUsage``) where they carry the
dimension, the ledger (``UsageEvent``, through its (organization, timestamp) index) only
for what rollups lack: workflow, prompt version, provider key, hour, quality score.
Money is USD, unrounded (ledger precision).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import (
    Avg,
    Count,
    DecimalField,
    F,
    IntegerField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, ExtractHour, TruncDate, TruncHour

from accounts.models import Customer, Environment, Feature, Organization, Plan, ProviderKey
from economics.models import CustomerEconomics, EconomicsSnapshot
from findings.calculations import Rates, TokenSums
from findings.models import WASTE_KINDS, Finding, FindingsPolicy, FindingStatus
from ingestion.models import DailyUsage, ProviderUsageBucket, UsageEvent
from ingestion.pricing import PriceBook, TokenUsage

ZERO = Decimal(0)
_MONEY = DecimalField(max_digits=30, decimal_places=12)
_UNIT_TOKENS = 1000  # small enough to stay in a model's base context tier


def findings_policy_get(*, organization: Organization) -> FindingsPolicy:
    """The organization's findings policy, created with the defaults on first use."""
    policy, _ = FindingsPolicy.objects.get_or_create(organization=organization)
    return policy


def finding_list(*, organization: Organization) -> QuerySet[Finding]:
    """Findings with their scope references joined, costliest first."""
    return Finding.objects.filter(organization=organization).select_related(
        "customer", "feature", "plan", "provider_key", "owner"
    )


def finding_open_list(
    *, organization: Organization, kinds: Iterable[str] | None = None
) -> QuerySet[Finding]:
    """Findings still to act on (not resolved or dismissed), highest dollars first."""
    findings = finding_list(organization=organization).exclude(
        status__in=(FindingStatus.RESOLVED, FindingStatus.DISMISSED)
    )
    if kinds is not None:
        findings = findings.filter(kind__in=list(kinds))
    return findings.order_by("-monthly_savings", "kind", "id")


def findings_identified(*, organization: Organization) -> tuple[int, Decimal]:
    """Open waste findings: how many, and their monthly savings together (USD a month)."""
    totals = finding_open_list(organization=organization, kinds=WASTE_KINDS).aggregate(
        count=Count("id"), savings=_money("monthly_savings")
    )
    return totals["count"], totals["savings"]


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return datetime.combine(start, time.min, UTC), datetime.combine(end, time.min, UTC)


def _rollups(organization: Organization, start: date, end: date) -> QuerySet[DailyUsage]:
    return DailyUsage.objects.filter(organization=organization, day__gte=start, day__lt=end)


def _events(organization: Organization, start: date, end: date) -> QuerySet[UsageEvent]:
    since, until = _bounds(start, end)
    return UsageEvent.objects.filter(
        organization=organization, timestamp__gte=since, timestamp__lt=until
    )


def _money(expression) -> Coalesce:
    return Coalesce(Sum(expression), Value(ZERO), output_field=_MONEY)


def _count(expression) -> Coalesce:
    return Coalesce(Sum(expression), 0, output_field=IntegerField())


_TOKEN_SUMS = {
    "requests": _count("requests"), "errors": _count("errors"), "retries": _count("retries"),
    "input_tokens": _count("input_tokens"), "output_tokens": _count("output_tokens"),
    "cached_input_tokens": _count("cached_input_tokens"),
    "cache_write_tokens": _count("cache_write_tokens"),
    "reasoning_tokens": _count("reasoning_tokens"),
    "unpriced_requests": _count("unpriced_requests"),
    "cost": _money("cost"), "retry_cost": _money("retry_cost"),
}  # fmt: skip


def tokens_of(row: dict[str, Any]) -> TokenSums:
    """The token sums of an aggregated row."""
    return TokenSums(
        input_tokens=row["input_tokens"], output_tokens=row["output_tokens"],
        cached_input_tokens=row["cached_input_tokens"],
        cache_write_tokens=row["cache_write_tokens"], reasoning_tokens=row["reasoning_tokens"],
    )  # fmt: skip


# --- rollups ----------------------------------------------------------------------------


def usage_by_model(
    *,
    organization: Organization,
    start: date,
    end: date,
    production: bool | None = True,
) -> list[dict[str, Any]]:
    """Usage per (feature, environment, provider, model, batch): requests, errors, retries,
    token sums, cost and retry cost (USD). ``production``: only production traffic (True),
    only the other environments (False), or all (None)."""
    rows = _rollups(organization, start, end)
    if production is True:
        rows = rows.filter(environment=Environment.PRODUCTION)
    elif production is False:
        rows = rows.exclude(environment=Environment.PRODUCTION)
    return list(
        rows.values("feature_id", "environment", "provider", "model", "batch")
        .annotate(**_TOKEN_SUMS)
        .order_by("feature_id", "environment", "provider", "model", "batch")
    )


def daily_cost(
    *, organization: Organization, start: date, end: date, **filters: Any
) -> list[tuple[date, Decimal]]:
    """USD per UTC day from the rollups matching ``filters`` (DailyUsage lookups)."""
    return list(
        _rollups(organization, start, end)
        .filter(**filters)
        .values("day")
        .annotate(cost=_money("cost"))
        .order_by("day")
        .values_list("day", "cost")
    )


def daily_cost_by(
    *, organization: Organization, start: date, end: date, key: str, **filters: Any
) -> dict[Any, list[tuple[date, Decimal, int]]]:
    """(day, USD, requests) per UTC day for every value of ``key`` (a DailyUsage column)."""
    rows = (
        _rollups(organization, start, end)
        .filter(**filters)
        .values(key, "day")
        .annotate(cost=_money("cost"), requests=_count("requests"))
        .order_by(key, "day")
    )
    result: dict[Any, list[tuple[date, Decimal, int]]] = {}
    for row in rows:
        result.setdefault(row[key], []).append((row["day"], row["cost"], row["requests"]))
    return result


def customer_costs(*, organization: Organization, start: date, end: date) -> list[dict[str, Any]]:
    """USD and requests per customer of billable traffic (customer unknown: ``None``)."""
    return list(
        _rollups(organization, start, end)
        .filter(billable=True)
        .values("customer_id")
        .annotate(cost=_money("cost"), requests=_count("requests"))
        .order_by("-cost")
    )


# --- ledger -----------------------------------------------------------------------------


def quality_by_model(
    *, organization: Organization, start: date, end: date
) -> dict[tuple[int, str, str], tuple[int, Decimal]]:
    """(feature, provider, model) → (scored events, mean quality score 0–1) of production
    traffic with a ``quality_score``."""
    rows = (
        _events(organization, start, end)
        .filter(environment=Environment.PRODUCTION, quality_score__isnull=False)
        .values("feature_id", "provider", "model")
        .annotate(scored=Count("id"), quality=Avg("quality_score"))
        .order_by()
    )
    return {
        (row["feature_id"], row["provider"], row["model"]): (row["scored"], row["quality"])
        for row in rows
    }


def batch_candidates(
    *,
    organization: Organization,
    start: date,
    end: date,
    timezone: str,
    off_hours: tuple[int, int],
    triggers: Iterable[str],
    workflow_keywords: Iterable[str],
) -> list[dict[str, Any]]:
    """Synchronous production traffic per (feature, workflow, provider, model) with the
    signals of background work: requests in the off hours ``[from, to)`` of the
    organization's time zone, requests with ``metadata.trigger`` in ``triggers``, requests
    without an end user, and whether the workflow's name has one of ``workflow_keywords``.
    """
    first, last = off_hours
    hour = ExtractHour("timestamp", tzinfo=zoneinfo.ZoneInfo(timezone or "UTC"))
    # A range across midnight (22 → 6) is two ranges.
    if first < last:
        off = Q(hour__gte=first, hour__lt=last)
    else:
        off = Q(hour__gte=first) | Q(hour__lt=last)
    rows = (
        _events(organization, start, end)
        .filter(
            batch=False, environment=Environment.PRODUCTION, provider__in=("openai", "anthropic")
        )
        .annotate(hour=hour)
        .values("feature_id", "workflow", "provider", "model")
        .annotate(
            requests=Count("id"),
            cost=_money("cost"),
            off_hours_requests=Count("id", filter=off),
            scheduled_requests=Count("id", filter=Q(metadata__trigger__in=list(triggers))),
            userless_requests=Count("id", filter=Q(user_id="")),
        )
        .order_by("feature_id", "workflow", "provider", "model")
    )
    keywords = [k.lower() for k in workflow_keywords]
    result = []
    for row in rows:
        row["keyword"] = next((k for k in keywords if k in row["workflow"].lower()), "")
        result.append(row)
    return result


def ledger_daily_cost(
    *, organization: Organization, start: date, end: date, **filters: Any
) -> list[tuple[date, Decimal]]:
    """USD per UTC day from the ledger, for scopes the rollups lack (key, workflow, version)."""
    return list(
        _events(organization, start, end)
        .filter(**filters)
        .annotate(day=TruncDate("timestamp", tzinfo=UTC))
        .values("day")
        .annotate(cost=_money("cost"))
        .order_by("day")
        .values_list("day", "cost")
    )


def prompt_version_mix(
    *, organization: Organization, start: date, end: date
) -> dict[tuple[int, str, str], list[tuple[str, int]]]:
    """(feature, provider, model) → [(prompt version, requests)], most used first, of
    production traffic."""
    rows = (
        _events(organization, start, end)
        .filter(environment=Environment.PRODUCTION, feature__isnull=False)
        .values("feature_id", "provider", "model", "prompt_version")
        .annotate(requests=Count("id"))
        .order_by("feature_id", "provider", "model", "-requests", "prompt_version")
    )
    mix: dict[tuple[int, str, str], list[tuple[str, int]]] = {}
    for row in rows:
        key = (row["feature_id"], row["provider"], row["model"])
        mix.setdefault(key, []).append((row["prompt_version"], row["requests"]))
    return mix


def prompt_version_costs(
    *, organization: Organization, start: date, split: date, end: date
) -> list[dict[str, Any]]:
    """Production requests and USD per (feature, prompt version, period): period "baseline"
    is ``[start, split)``, "recent" ``[split, end)``; with first and last day seen."""
    recent_from = datetime.combine(split, time.min, UTC)
    rows = (
        _events(organization, start, end)
        .filter(environment=Environment.PRODUCTION, feature__isnull=False)
        .exclude(prompt_version="")
        .values("feature_id", "prompt_version")
        .annotate(
            baseline_requests=Count("id", filter=Q(timestamp__lt=recent_from)),
            baseline_cost=Coalesce(
                Sum("cost", filter=Q(timestamp__lt=recent_from)),
                Value(ZERO),
                output_field=_MONEY,
            ),
            recent_requests=Count("id", filter=Q(timestamp__gte=recent_from)),
            recent_cost=Coalesce(
                Sum("cost", filter=Q(timestamp__gte=recent_from)),
                Value(ZERO),
                output_field=_MONEY,
            ),
            first_seen=Min("timestamp"),
            last_seen=Max("timestamp"),
        )
        .order_by("feature_id", "prompt_version")
    )
    return list(rows)


def provider_key_spend(
    *, organization: Organization, start: date, end: date
) -> list[dict[str, Any]]:
    """Ledger spend per provider key: requests, USD, and USD of events the key's mapping
    had to attribute (no feature tag of their own) or that stayed unattributed."""
    return list(
        _events(organization, start, end)
        .filter(provider_key__isnull=False)
        .values("provider_key_id")
        .annotate(
            # Before ``cost``: once annotated, that name means the aggregate, not the column.
            untagged_cost=Coalesce(
                Sum("cost", filter=Q(attribution_source__in=("key_mapping", "unattributed"))),
                Value(ZERO), output_field=_MONEY,
            ),
            requests=Count("id"),
            cost=_money("cost"),
            untagged_requests=Count(
                "id", filter=Q(attribution_source__in=("key_mapping", "unattributed"))
            ),
            first_seen=Min("timestamp"),
            last_seen=Max("timestamp"),
        )
        .order_by("provider_key_id")
    )  # fmt: skip


def provider_bucket_spend(
    *, organization: Organization, start: date, end: date
) -> list[dict[str, Any]]:
    """Provider-reported usage per key (daily buckets): requests and USD at Metron's prices."""
    since, until = _bounds(start, end)
    return list(
        ProviderUsageBucket.objects.filter(
            organization=organization, bucket_width="1d",
            bucket_start__gte=since, bucket_start__lt=until,
        )
        .exclude(api_key_id="")
        .values("provider", "api_key_id", "provider_key_id")
        .annotate(
            requests=_count("requests"), cost=_money("estimated_cost"),
            input_tokens=_count("input_tokens"), output_tokens=_count("output_tokens"),
            models=ArrayAgg("model", distinct=True),
        )
        .order_by("provider", "api_key_id")
    )  # fmt: skip


def provider_bucket_daily_cost(
    *, organization: Organization, start: date, end: date, provider: str, api_key_id: str
) -> list[tuple[date, Decimal]]:
    """USD per UTC day the provider reported for one key (daily buckets)."""
    since, until = _bounds(start, end)
    return list(
        ProviderUsageBucket.objects.filter(
            organization=organization, bucket_width="1d", provider=provider,
            api_key_id=api_key_id, bucket_start__gte=since, bucket_start__lt=until,
        )
        .annotate(day=TruncDate("bucket_start", tzinfo=UTC))
        .values("day")
        .annotate(cost=_money("estimated_cost"))
        .order_by("day")
        .values_list("day", "cost")
    )  # fmt: skip


def hourly_usage(
    *, organization: Organization, start: date, end: date
) -> dict[int | None, list[dict[str, Any]]]:
    """Per feature, its hours with traffic: requests, errors and USD (production)."""
    rows = (
        _events(organization, start, end)
        .filter(environment=Environment.PRODUCTION)
        .annotate(hour=TruncHour("timestamp", tzinfo=UTC))
        .values("feature_id", "hour")
        .annotate(
            requests=Count("id"), errors=Count("id", filter=Q(status="error")), cost=_money("cost")
        )
        .order_by("feature_id", "hour")
    )
    result: dict[int | None, list[dict[str, Any]]] = {}
    for row in rows:
        result.setdefault(row["feature_id"], []).append(row)
    return result


def hour_top_customers(
    *, organization: Organization, feature_id: int | None, hours: list[datetime], limit: int = 3
) -> list[dict[str, Any]]:
    """The customers sending most requests to a feature in the given hours."""
    if not hours:
        return []
    since, until = min(hours), max(hours) + timedelta(hours=1)
    rows = (
        UsageEvent.objects.filter(
            organization=organization, timestamp__gte=since, timestamp__lt=until,
            feature_id=feature_id, environment=Environment.PRODUCTION,
        )
        .annotate(hour=TruncHour("timestamp", tzinfo=UTC))
        .filter(hour__in=hours)
        .values("customer_id")
        .annotate(requests=Count("id"), errors=Count("id", filter=Q(status="error")))
        .order_by("-requests")[:limit]
    )  # fmt: skip
    return list(rows)


# --- economics --------------------------------------------------------------------------


@dataclass(frozen=True)
class FreeTierUsage:
    """AI cost (USD) of free and trial accounts over a period, and where it was read."""

    source: str  # "economics snapshot <period>" or "usage rollups"
    period_start: date
    period_end: date
    rows: list[dict[str, Any]]  # customer_id, plan_id, cost


def free_tier_usage(*, organization: Organization, start: date, end: date) -> FreeTierUsage:
    """Per free or trial account, its AI cost over the rolling 30-day economics snapshot
    ending at ``end`` (the latest one if none ends there); without snapshots, from the
    rollups of ``[start, end)`` (the plan in force at each event)."""
    free_plans = Plan.objects.filter(organization=organization).filter(
        Q(is_free=True) | Q(is_trial=True)
    )
    snapshots = EconomicsSnapshot.objects.filter(
        organization=organization, kind=EconomicsSnapshot.Kind.ROLLING_30D
    )
    snapshot = snapshots.filter(period_end=end).first() or snapshots.order_by("-period_end").first()
    if snapshot is not None:
        rows = (
            CustomerEconomics.objects.filter(snapshot=snapshot, plan__in=free_plans)
            .values("customer_id", "plan_id")
            .annotate(cost=F("ai_cost"))
            .order_by("-ai_cost", "customer_id")
        )
        return FreeTierUsage(
            source=f"economics snapshot: 30 days to {snapshot.period_end}",
            period_start=snapshot.period_start, period_end=snapshot.period_end,
            rows=list(rows),
        )  # fmt: skip
    rows = (
        _rollups(organization, start, end)
        .filter(plan__in=free_plans, customer__isnull=False, billable=True)
        .values("customer_id", "plan_id")
        .annotate(cost=_money("cost"))
        .order_by("-cost", "customer_id")
    )
    return FreeTierUsage(
        source="usage rollups (no economics snapshot)", period_start=start, period_end=end,
        rows=list(rows),
    )  # fmt: skip


# --- catalog and prices -----------------------------------------------------------------


def names_by_id(model, ids: Iterable[int | None], field: str = "name") -> dict[int, str]:
    """Display names of catalog rows by id (one query)."""
    wanted = {pk for pk in ids if pk is not None}
    if not wanted:
        return {}
    return dict(model.objects.filter(pk__in=wanted).values_list("pk", field))


def features_by_id(*, organization: Organization) -> dict[int, Feature]:
    return {f.pk: f for f in Feature.objects.filter(organization=organization)}


def customers_by_id(
    *, organization: Organization, ids: Iterable[int | None]
) -> dict[int, Customer]:
    wanted = {pk for pk in ids if pk is not None}
    return {c.pk: c for c in Customer.objects.filter(organization=organization, pk__in=wanted)}


def plans_by_id(*, organization: Organization) -> dict[int, Plan]:
    return {p.pk: p for p in Plan.objects.filter(organization=organization)}


def provider_keys_by_id(*, organization: Organization) -> dict[int, ProviderKey]:
    return {
        k.pk: k
        for k in ProviderKey.objects.filter(organization=organization).select_related("feature")
    }


def price_book_get(*, organization: Organization) -> PriceBook:
    """The organization's price book (list prices under its overrides)."""
    return PriceBook.for_organization(organization)


def model_rates(
    *, prices: PriceBook, provider: str, model: str, day: date, batch: bool = False
) -> Rates | None:
    """A model's unit prices (USD per token) on ``day``, from the price book; None when a
    token type has no price. Context-tiered models get their base tier's prices."""
    at = datetime.combine(day, time(12), UTC)
    n = _UNIT_TOKENS
    usages = (
        TokenUsage(input_tokens=n, output_tokens=0),
        TokenUsage(input_tokens=n, output_tokens=0, cached_input_tokens=n),
        TokenUsage(input_tokens=n, output_tokens=0, cache_write_tokens=n),
        TokenUsage(input_tokens=0, output_tokens=n),
        TokenUsage(input_tokens=0, output_tokens=n, reasoning_tokens=n),
    )
    unit = []
    for usage in usages:
        quote = prices.quote(provider=provider, model=model, at=at, usage=usage, batch=batch)
        if quote is None:
            return None
        unit.append(quote.cost / n)
    return Rates(*unit)
