"""The weekly review (issue #6 point 6): what finance and engineering look at each week.

:func:`weekly_review` gathers, for the week ``[week_start, week_start + 7 days)`` (UTC):

(a) the top negative-margin feature paths (feature × plan) of the economics snapshot
    covering the week, with the feature's prompt versions;
(b) prompt versions first used in the week, with their cost per request against the
    feature's other versions over the four weeks before, and the monthly margin impact;
(c) budget state changes recorded in the week;
(d) pricing and quota actions for outlier tenants: remediation items of pricing kinds
    or ``contact_customer`` created or moved in the week, and the snapshot's underwater
    or plan-tail customers that no such action covers yet.

Money is ``Decimal`` USD, unrounded (the exports and screens round at display).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import BooleanField, ExpressionWrapper, Max, Min, Q, Sum
from django.utils import timezone

from accounts.models import Feature, Organization
from economics.models import CustomerEconomics, EconomicsSnapshot, PromptVersionDay
from findings.models import (
    PRICING_KINDS,
    BudgetTransition,
    RemediationItem,
    RemediationKind,
    RemediationState,
    RemediationTransition,
)
from findings.services.budgets import budget_scope_label

ZERO = Decimal(0)
WEEK = timedelta(days=7)
TOP_PATHS = 3
OUTLIER_LIMIT = 10
# Days before the week whose traffic on a feature's other prompt versions is the baseline.
BASELINE_DAYS = 28
# Days before the week searched for earlier traffic of a version: a version unused for
# that long and used again counts as a change.
FIRST_SEEN_LOOKBACK_DAYS = 90
DAYS_PER_MONTH = Decimal(30)  # monthly figures: daily × 30
# Remediation kinds that are pricing or quota actions towards a tenant.
TENANT_ACTION_KINDS = frozenset(PRICING_KINDS | {RemediationKind.CONTACT_CUSTOMER})
CLOSED_STATES = frozenset({RemediationState.REJECTED, RemediationState.CANCELLED})


@dataclass(frozen=True)
class PromptVersionCost:
    """A feature's cost under one prompt version over the snapshot's period."""

    prompt_version: str
    requests: int
    cost: Decimal
    cost_per_request: Decimal | None


@dataclass(frozen=True)
class FeaturePath:
    """A feature on a plan losing money (a).

    ``revenue`` = active users × the plan's recognized revenue per active user (the
    feature-health definition, DESIGN §7): what the plan earns from this feature's users.
    ``margin`` = revenue − cost; ``margin_pct`` = margin ÷ revenue (None without revenue).
    """

    feature_id: int | None
    feature_key: str | None
    feature_name: str
    plan_code: str
    cost: Decimal
    revenue: Decimal
    margin: Decimal
    margin_pct: Decimal | None
    invocations: int
    active_users: int
    cost_per_active_user: Decimal | None
    revenue_per_active_user: Decimal | None
    band: str | None
    prompt_versions: tuple[PromptVersionCost, ...]  # the feature's, costliest first


@dataclass(frozen=True)
class PromptVersionChange:
    """A prompt version first used in the week, against the feature's other versions (b).

    ``before`` figures cover the ``BASELINE_DAYS`` before the week, ``after`` the week.
    ``monthly_margin_impact`` = −(after − before cost per request) × the feature's
    requests in the week × 30 / 7: USD a month, negative when the version costs more,
    assuming all of the feature's traffic moves to it.
    """

    feature_id: int | None
    feature_key: str | None
    feature_name: str
    prompt_version: str
    first_seen: date
    previous_versions: tuple[str, ...]
    requests_before: int
    cost_before: Decimal
    cost_per_request_before: Decimal | None
    requests_after: int
    cost_after: Decimal
    cost_per_request_after: Decimal | None
    cost_per_request_change: Decimal | None
    cost_per_request_change_pct: Decimal | None  # fraction of 1 (0.25 = +25 %)
    feature_requests_in_week: int
    monthly_margin_impact: Decimal | None


@dataclass(frozen=True)
class BudgetChange:
    """A budget state change recorded in the week (c)."""

    transition_id: int
    budget_id: int
    budget_name: str
    scope: str
    scope_label: str
    at: datetime
    month: date
    from_state: str
    to_state: str
    spend: Decimal
    limit: Decimal


@dataclass(frozen=True)
class TenantAction:
    """A pricing, quota or contact action for a tenant, created or moved in the week (d).

    ``state`` is the item's state now; ``last_change_at`` its latest move up to the
    week's end; ``estimated_monthly_savings`` USD a month.
    """

    remediation_id: int
    kind: str
    title: str
    state: str
    estimated_monthly_savings: Decimal
    customer_id: int | None
    customer_external_id: str | None
    customer_name: str | None
    plan_code: str | None
    created_at: datetime
    last_change_at: datetime


@dataclass(frozen=True)
class OutlierTenant:
    """An underwater or plan-tail customer of the snapshot with no action yet (d).

    ``cost_ratio`` = AI cost ÷ revenue (None without revenue); ``tail_threshold`` is the
    plan's (USD of AI cost at or above which an account is in the plan's tail).
    """

    customer_id: int
    customer_external_id: str
    customer_name: str
    plan_code: str | None
    ai_cost: Decimal
    revenue: Decimal
    contribution_margin: Decimal
    cost_ratio: Decimal | None
    band: str
    underwater: bool
    in_tail: bool
    tail_threshold: Decimal | None


@dataclass(frozen=True)
class WeeklyReview:
    """One organization's week ``[week_start, week_end)``; see the module docstring.

    ``snapshot_*`` describe the economics snapshot (a) and (d) read: the rolling 30
    days ending in the week, else the calendar month holding the week's last day;
    all ``None`` when there is none. ``outlier_count`` is how many outliers without
    action exist in all (``outliers_without_action`` lists the costliest).
    """

    organization_id: int
    organization_name: str
    week_start: date
    week_end: date
    generated_at: datetime
    snapshot_id: int | None
    snapshot_kind: str | None
    snapshot_period_start: date | None
    snapshot_period_end: date | None
    snapshot_as_of: datetime | None
    snapshot_stale: bool
    negative_margin_paths: tuple[FeaturePath, ...]
    prompt_version_changes: tuple[PromptVersionChange, ...]
    budget_changes: tuple[BudgetChange, ...]
    tenant_actions: tuple[TenantAction, ...]
    outliers_without_action: tuple[OutlierTenant, ...]
    outlier_count: int


def _d(value) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def _divide(numerator: Decimal, denominator) -> Decimal | None:
    return numerator / denominator if denominator else None


def _utc(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def week_start_default(now: datetime) -> date:
    """The Monday of the last complete week (UTC) before ``now``."""
    today = now.astimezone(UTC).date()
    return today - timedelta(days=today.weekday()) - WEEK


def review_snapshot(
    *, organization: Organization, week_start: date, week_end: date
) -> EconomicsSnapshot | None:
    """The snapshot a week's review reads: the latest rolling 30 days ending in the week
    (``week_start < period_end ≤ week_end``), else the month holding the week's last day."""
    snapshots = EconomicsSnapshot.objects.filter(organization=organization)
    rolling = (
        snapshots.filter(
            kind=EconomicsSnapshot.Kind.ROLLING_30D,
            period_end__gt=week_start,
            period_end__lte=week_end,
        )
        .order_by("-period_end", "-as_of")
        .first()
    )
    if rolling is not None:
        return rolling
    last_day = week_end - timedelta(days=1)
    return snapshots.filter(
        kind=EconomicsSnapshot.Kind.MONTH, period_start__lte=last_day, period_end__gt=last_day
    ).first()


def negative_margin_paths(
    *, snapshot: EconomicsSnapshot, limit: int = TOP_PATHS
) -> list[FeaturePath]:
    """The snapshot's feature × plan rows with the most negative margin, worst first.

    Rows over all plans (``plan`` null) are skipped, and rows whose plan revenue per
    active user is unknown (no active users) are too: their margin cannot be told.
    """
    versions: dict[int | None, list[PromptVersionCost]] = defaultdict(list)
    for row in snapshot.prompt_versions or []:
        versions[row.get("feature_id")].append(
            PromptVersionCost(
                prompt_version=row["prompt_version"],
                requests=int(row.get("requests") or 0),
                cost=_d(row.get("cost")) or ZERO,
                cost_per_request=_d(row.get("cost_per_request")),
            )
        )
    paths = []
    for row in snapshot.features or []:
        per_user = _d(row.get("plan_revenue_per_active_user"))
        if row.get("plan") is None or per_user is None:
            continue
        cost = _d(row.get("cost")) or ZERO
        users = int(row.get("active_users") or 0)
        revenue = per_user * users
        margin = revenue - cost
        if margin >= 0:
            continue
        paths.append(
            FeaturePath(
                feature_id=row.get("feature_id"),
                feature_key=row.get("feature"),
                feature_name=row.get("name") or row.get("feature") or "Unattributed",
                plan_code=row["plan"],
                cost=cost,
                revenue=revenue,
                margin=margin,
                margin_pct=_divide(margin, revenue),
                invocations=int(row.get("invocations") or 0),
                active_users=users,
                cost_per_active_user=_d(row.get("cost_per_active_user")),
                revenue_per_active_user=per_user,
                band=row.get("band"),
                prompt_versions=tuple(
                    sorted(versions.get(row.get("feature_id"), ()), key=lambda v: -v.cost)
                ),
            )
        )
    paths.sort(key=lambda path: (path.margin, path.feature_key or "", path.plan_code))
    return paths[:limit]


def prompt_version_changes(
    *, organization: Organization, week_start: date, week_end: date
) -> list[PromptVersionChange]:
    """Prompt versions first used in ``[week_start, week_end)`` (no traffic in the
    ``FIRST_SEEN_LOOKBACK_DAYS`` before) on features with traffic on other versions in
    the ``BASELINE_DAYS`` before the week; most margin lost first. Billable traffic, from
    economics' ``PromptVersionDay``."""
    days = PromptVersionDay.objects.filter(organization_id=organization.pk)
    first_seen = {
        (feature, version): first
        for feature, version, first in days.filter(
            day__gte=week_start - timedelta(days=FIRST_SEEN_LOOKBACK_DAYS), day__lt=week_end
        )
        .values_list("feature_id", "prompt_version")
        .annotate(first=Min("day"))
        .values_list("feature_id", "prompt_version", "first")
        .order_by()
    }
    new = {key: first for key, first in first_seen.items() if first >= week_start}
    if not new:
        return []
    features = {feature for feature, _ in new}
    baseline_start = week_start - timedelta(days=BASELINE_DAYS)
    sums: dict[tuple, tuple[int, Decimal]] = {}
    for feature, version, in_week, requests, cost in (
        days.filter(
            feature_id__in=[f for f in features if f is not None],
            day__gte=baseline_start,
            day__lt=week_end,
        )
        .annotate(in_week=ExpressionWrapper(Q(day__gte=week_start), output_field=BooleanField()))
        .values_list("feature_id", "prompt_version", "in_week")
        .annotate(requests=Sum("requests"), cost=Sum("cost"))
        .values_list("feature_id", "prompt_version", "in_week", "requests", "cost")
        .order_by()
    ):
        sums[feature, version, in_week] = (requests or 0, cost or ZERO)
    labels = {
        pk: (key, name)
        for pk, key, name in Feature.objects.filter(
            organization=organization, pk__in=[f for f in features if f is not None]
        ).values_list("pk", "key", "name")
    }
    changes = []
    for (feature, version), first in new.items():
        before = [
            (v, *sums[f, v, False])
            for (f, v, in_week) in sums
            if f == feature and not in_week and v != version
        ]
        requests_before = sum(r for _, r, _ in before)
        if not requests_before:
            continue  # a new feature's first version changes nothing
        cost_before = sum((c for _, _, c in before), ZERO)
        requests_after, cost_after = sums.get((feature, version, True), (0, ZERO))
        week_requests = sum(sums[k][0] for k in sums if k[0] == feature and k[2])
        per_before = _divide(cost_before, requests_before)
        per_after = _divide(cost_after, requests_after)
        delta = per_after - per_before if per_after is not None else None
        impact = None
        if delta is not None:
            impact = -delta * week_requests * DAYS_PER_MONTH / WEEK.days
        changes.append(
            PromptVersionChange(
                feature_id=feature,
                feature_key=labels.get(feature, (None, None))[0],
                feature_name=labels.get(feature, (None, "Unattributed"))[1],
                prompt_version=version,
                first_seen=first,
                previous_versions=tuple(sorted(v for v, _, _ in before)),
                requests_before=requests_before,
                cost_before=cost_before,
                cost_per_request_before=per_before,
                requests_after=requests_after,
                cost_after=cost_after,
                cost_per_request_after=per_after,
                cost_per_request_change=delta,
                cost_per_request_change_pct=_divide(delta, per_before)
                if delta is not None
                else None,
                feature_requests_in_week=week_requests,
                monthly_margin_impact=impact,
            )
        )
    changes.sort(
        key=lambda c: (
            c.monthly_margin_impact if c.monthly_margin_impact is not None else ZERO,
            c.feature_key or "",
            c.prompt_version,
        )
    )
    return changes


def budget_changes(
    *, organization: Organization, week_start: date, week_end: date
) -> list[BudgetChange]:
    """Budget transitions recorded in the week, in order."""
    transitions = BudgetTransition.objects.filter(
        organization=organization, created_at__gte=_utc(week_start), created_at__lt=_utc(week_end)
    ).select_related(
        "budget", "budget__feature", "budget__customer", "budget__plan", "budget__provider_key"
    )
    return [
        BudgetChange(
            transition_id=t.pk,
            budget_id=t.budget_id,
            budget_name=t.budget.name,
            scope=t.budget.scope,
            scope_label=budget_scope_label(t.budget),
            at=t.created_at,
            month=t.month,
            from_state=t.from_state,
            to_state=t.to_state,
            spend=t.spend,
            limit=t.limit,
        )
        for t in transitions.order_by("created_at", "pk")
    ]


def tenant_actions(
    *, organization: Organization, week_start: date, week_end: date
) -> list[TenantAction]:
    """Pricing, quota and contact-customer items created or moved in the week, newest
    activity first."""
    start, end = _utc(week_start), _utc(week_end)
    moved = RemediationTransition.objects.filter(
        organization=organization, created_at__gte=start, created_at__lt=end
    ).values("item_id")
    items = (
        RemediationItem.objects.filter(organization=organization, kind__in=TENANT_ACTION_KINDS)
        .filter(Q(created_at__gte=start, created_at__lt=end) | Q(pk__in=moved))
        .select_related("customer", "plan")
    )
    last_moves = dict(
        RemediationTransition.objects.filter(item__in=items, created_at__lt=end)
        .values_list("item_id")
        .annotate(last=Max("created_at"))
        .values_list("item_id", "last")
        .order_by()
    )
    actions = [
        TenantAction(
            remediation_id=item.pk,
            kind=item.kind,
            title=item.title,
            state=item.state,
            estimated_monthly_savings=item.estimated_monthly_savings,
            customer_id=item.customer_id,
            customer_external_id=item.customer.external_id if item.customer else None,
            customer_name=item.customer.name if item.customer else None,
            plan_code=item.plan.code if item.plan else None,
            created_at=item.created_at,
            last_change_at=max(item.created_at, last_moves.get(item.pk, item.created_at)),
        )
        for item in items
    ]
    actions.sort(key=lambda a: (a.last_change_at, a.remediation_id), reverse=True)
    return actions


def outliers_without_action(
    *, snapshot: EconomicsSnapshot, limit: int = OUTLIER_LIMIT
) -> tuple[list[OutlierTenant], int]:
    """The snapshot's underwater or plan-tail customers that no open tenant action
    covers (an item on the customer, or on its plan without a customer), costliest
    first; returns (the first ``limit``, how many in all)."""
    tails = {
        row["plan_id"]: _d(row.get("tail_threshold"))
        for row in snapshot.plans or []
        if row.get("plan_id") is not None and _d(row.get("tail_threshold")) is not None
    }
    tail_q = Q()
    for plan_id, threshold in tails.items():
        tail_q |= Q(plan_id=plan_id, ai_cost__gte=threshold)
    rows = CustomerEconomics.objects.filter(snapshot=snapshot).filter(Q(underwater=True) | tail_q)
    live = RemediationItem.objects.filter(
        organization_id=snapshot.organization_id, kind__in=TENANT_ACTION_KINDS
    ).exclude(state__in=CLOSED_STATES)
    covered_customers = live.filter(customer__isnull=False).values("customer_id")
    covered_plans = live.filter(customer__isnull=True, plan__isnull=False).values("plan_id")
    rows = (
        rows.exclude(customer_id__in=covered_customers)
        .exclude(plan_id__in=covered_plans)
        .select_related("customer", "plan")
        .order_by("-ai_cost", "customer__external_id")
    )
    count = rows.count()
    outliers = []
    for row in rows[:limit]:
        threshold = tails.get(row.plan_id)
        outliers.append(
            OutlierTenant(
                customer_id=row.customer_id,
                customer_external_id=row.customer.external_id,
                customer_name=row.customer.name,
                plan_code=row.plan.code if row.plan else None,
                ai_cost=row.ai_cost,
                revenue=row.revenue,
                contribution_margin=row.contribution_margin,
                cost_ratio=row.cost_ratio,
                band=row.band,
                underwater=row.underwater,
                in_tail=threshold is not None and row.ai_cost >= threshold,
                tail_threshold=threshold,
            )
        )
    return outliers, count


def weekly_review(
    *, organization: Organization, week_start: date | None = None, now: datetime | None = None
) -> WeeklyReview:
    """The review of the week starting ``week_start`` (default: the last complete
    Monday-to-Sunday week, UTC). Reads only; about ten queries."""
    now = now or timezone.now()
    week_start = week_start or week_start_default(now)
    week_end = week_start + WEEK
    snapshot = review_snapshot(organization=organization, week_start=week_start, week_end=week_end)
    paths: list[FeaturePath] = []
    outliers: list[OutlierTenant] = []
    outlier_count = 0
    if snapshot is not None:
        paths = negative_margin_paths(snapshot=snapshot)
        outliers, outlier_count = outliers_without_action(snapshot=snapshot)
    window = {"organization": organization, "week_start": week_start, "week_end": week_end}
    return WeeklyReview(
        organization_id=organization.pk,
        organization_name=organization.name,
        week_start=week_start,
        week_end=week_end,
        generated_at=now,
        snapshot_id=snapshot.pk if snapshot else None,
        snapshot_kind=snapshot.kind if snapshot else None,
        snapshot_period_start=snapshot.period_start if snapshot else None,
        snapshot_period_end=snapshot.period_end if snapshot else None,
        snapshot_as_of=snapshot.as_of if snapshot else None,
        snapshot_stale=bool(snapshot and snapshot.stale_since),
        negative_margin_paths=tuple(paths),
        prompt_version_changes=tuple(prompt_version_changes(**window)),
        budget_changes=tuple(budget_changes(**window)),
        tenant_actions=tuple(tenant_actions(**window)),
        outliers_without_action=tuple(outliers),
        outlier_count=outlier_count,
    )
