"""Monthly budgets: each active budget's spend this calendar month (UTC) and its state.

State: ``exceeded`` when the month's spend ≥ the limit, ``warning`` when it is ≥
``warning_percent`` % of the limit, else ``ok``; spend is compared in cents, as shown.
Every change of state appends a :class:`BudgetTransition` and notifies
``budget.transition``; a new month starts at ``ok`` (recorded when the state was not ok).

Spend is the ledger's priced cost (USD, every environment: a budget caps money spent,
staging included; unpriced events count $0 until priced):

- organization, feature, customer and plan scopes sum the daily rollups
  (``DailyUsage``) of the month, by the rollup's foreign key (the plan in force when
  each call happened);
- a key scope sums the ledger's events (``UsageEvent.cost``) with that provider key
  in the month: rollups carry no key column. Provider usage buckets are not added;
  they overlap the ledger's instrumented traffic (keys seen only there are the
  orphaned-spend detector's subject).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Organization
from findings.models import Budget, BudgetState, BudgetTransition
from findings.services.notifications import EVENT_BUDGET_TRANSITION, notifications_enqueue
from ingestion.models import DailyUsage, UsageEvent
from metron.money import ZERO, quantize_money

HUNDRED = Decimal(100)
TENTH = Decimal("0.1")
Scope = Budget.Scope
# The rollup column each scope sums by (the organization scope sums everything).
ROLLUP_COLUMNS = {Scope.FEATURE: "feature_id", Scope.CUSTOMER: "customer_id", Scope.PLAN: "plan_id"}
SCOPE_FIELDS = {
    Scope.FEATURE: "feature",
    Scope.CUSTOMER: "customer",
    Scope.PLAN: "plan",
    Scope.KEY: "provider_key",
}


def month_bounds(day: date) -> tuple[date, date]:
    """``[first day, first day of the next month)`` of ``day``'s calendar month."""
    start = day.replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1)


def _utc(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def budget_state_for(*, spend: Decimal, limit: Decimal, warning_percent: int) -> str:
    """The state a month's ``spend`` puts a budget in (USD; compared at cent precision)."""
    spend = quantize_money(spend)
    if spend >= limit:
        return BudgetState.EXCEEDED
    if spend * HUNDRED >= limit * warning_percent:
        return BudgetState.WARNING
    return BudgetState.OK


def budget_scope_target(budget: Budget) -> int | None:
    """The id of the row the budget's scope names (None for the organization scope)."""
    field = SCOPE_FIELDS.get(budget.scope)
    return getattr(budget, f"{field}_id") if field else None


def budget_scope_label(budget: Budget) -> str:
    """A human name for the budget's scope, e.g. "Feature: Summarize" (reads the relation)."""
    field = SCOPE_FIELDS.get(budget.scope)
    if field is None:
        return "Organization"
    target = getattr(budget, field)
    name = getattr(target, "name", "") or getattr(target, "label", "") or str(target)
    return f"{budget.get_scope_display()}: {name}"


def budget_spends(
    *, organization: Organization, budgets: list[Budget], start: date, end: date
) -> dict[int, Decimal]:
    """Spend (USD, unrounded) of each budget's scope over days ``[start, end)``, by budget
    id: one grouped query per scope kind present."""
    by_scope: dict[str, set[int]] = {}
    for budget in budgets:
        by_scope.setdefault(budget.scope, set()).add(budget_scope_target(budget) or 0)
    rollups = DailyUsage.objects.filter(organization=organization, day__gte=start, day__lt=end)
    totals: dict[tuple[str, int], Decimal] = {}
    for scope, targets in by_scope.items():
        if scope == Scope.ORGANIZATION:
            total = rollups.aggregate(total=Sum("cost"))["total"]
            totals[scope, 0] = total or ZERO
            continue
        if scope == Scope.KEY:
            rows = (
                UsageEvent.objects.filter(
                    organization=organization,
                    timestamp__gte=_utc(start),
                    timestamp__lt=_utc(end),
                    provider_key_id__in=targets,
                )
                .values_list("provider_key_id")
                .annotate(total=Sum("cost"))
                .order_by()
            )
        else:
            column = ROLLUP_COLUMNS[scope]
            rows = (
                rollups.filter(**{f"{column}__in": targets})
                .values_list(column)
                .annotate(total=Sum("cost"))
                .order_by()
            )
        for target, total in rows:
            totals[scope, target] = total or ZERO
    return {
        budget.pk: totals.get((budget.scope, budget_scope_target(budget) or 0), ZERO)
        for budget in budgets
    }


def budget_daily_series(*, budget: Budget, start: date, end: date) -> list[tuple[date, Decimal]]:
    """(day, spend USD) of the budget's scope for each day of ``[start, end)`` with spend."""
    organization = budget.organization_id
    if budget.scope == Scope.KEY:
        rows = (
            UsageEvent.objects.filter(
                organization_id=organization,
                timestamp__gte=_utc(start),
                timestamp__lt=_utc(end),
                provider_key_id=budget.provider_key_id,
            )
            .annotate(day=TruncDate("timestamp", tzinfo=UTC))
            .values_list("day")
            .annotate(total=Sum("cost"))
            .order_by("day")
        )
    else:
        rollups = DailyUsage.objects.filter(
            organization_id=organization, day__gte=start, day__lt=end
        )
        if budget.scope != Scope.ORGANIZATION:
            column = ROLLUP_COLUMNS[budget.scope]
            rollups = rollups.filter(**{column: budget_scope_target(budget)})
        rows = rollups.values_list("day").annotate(total=Sum("cost")).order_by("day")
    return [(day, total or ZERO) for day, total in rows]


def budget_percent(spend: Decimal, limit: Decimal) -> Decimal | None:
    """Spend as a percentage of the limit, one place (85.0); None for a zero limit."""
    return (spend * HUNDRED / limit).quantize(TENTH) if limit > 0 else None


def budget_transition_payload(transition: BudgetTransition) -> dict:
    """The ``budget.transition`` notification payload (money as USD decimal strings)."""
    budget = transition.budget
    percent = budget_percent(transition.spend, transition.limit)
    return {
        "budget": {
            "id": budget.pk,
            "name": budget.name,
            "scope": budget.scope,
            "scope_label": budget_scope_label(budget),
            "scope_id": budget_scope_target(budget),
            "monthly_limit": str(budget.monthly_limit),
            "warning_percent": budget.warning_percent,
        },
        "transition_id": transition.pk,
        "month": transition.month,
        "from_state": transition.from_state,
        "to_state": transition.to_state,
        "spend": str(transition.spend),
        "limit": str(transition.limit),
        "percent": None if percent is None else str(percent),
    }


def _transition(budget: Budget, month: date, to_state: str, spend: Decimal) -> BudgetTransition:
    transition = BudgetTransition.objects.create(
        organization_id=budget.organization_id,
        budget=budget,
        month=month,
        from_state=budget.state,
        to_state=to_state,
        spend=spend,
        limit=budget.monthly_limit,
    )
    budget.state = to_state
    notifications_enqueue(
        organization=budget.organization,
        event_type=EVENT_BUDGET_TRANSITION,
        payload=budget_transition_payload(transition),
    )
    return transition


@transaction.atomic
def budgets_evaluate(
    *, organization: Organization, now: datetime | None = None
) -> list[BudgetTransition]:
    """Bring every active budget up to this month's spend; returns the transitions made.

    The organization's active budgets are locked (in id order) for the whole
    evaluation, so concurrent evaluations run one after the other and each state
    change is recorded exactly once. An evaluation older than the month a budget
    already reached leaves it alone.
    """
    now = now or timezone.now()
    month, month_end = month_bounds(now.astimezone(UTC).date())
    budgets = list(
        Budget.objects.select_for_update(of=("self",), no_key=True)
        .filter(organization=organization, active=True)
        .select_related("organization", "feature", "customer", "plan", "provider_key")
        .order_by("pk")
    )
    budgets = [budget for budget in budgets if budget.month is None or budget.month <= month]
    spends = budget_spends(organization=organization, budgets=budgets, start=month, end=month_end)
    transitions = []
    for budget in budgets:
        spend = quantize_money(spends[budget.pk])
        if budget.month is not None and budget.month < month and budget.state != BudgetState.OK:
            # A new month starts from nothing spent.
            transitions.append(_transition(budget, month, BudgetState.OK, ZERO))
        state = budget_state_for(
            spend=spend, limit=budget.monthly_limit, warning_percent=budget.warning_percent
        )
        if state != budget.state:
            transitions.append(_transition(budget, month, state, spend))
        budget.month, budget.month_spend, budget.evaluated_at = month, spend, now
        budget.save(update_fields=["state", "month", "month_spend", "evaluated_at", "updated_at"])
    return transitions


@dataclass(frozen=True)
class BudgetProjection:
    """A month's spend so far and where it is heading (USD; days of the UTC month)."""

    spend: Decimal
    days_elapsed: int
    days_in_month: int
    projected_spend: Decimal
    projected_overspend: Decimal


def budget_projection(*, budget: Budget, now: datetime) -> BudgetProjection:
    """Linear projection of the budget's month: spend ÷ days elapsed (today counted as a
    whole day, so the projection errs low) × days in the month; overspend = projected
    spend − limit, at least 0. Uses the spend stored by the last evaluation."""
    today = now.astimezone(UTC).date()
    days_in_month = calendar.monthrange(today.year, today.month)[1]
    elapsed = today.day
    projected = quantize_money(budget.month_spend * days_in_month / elapsed)
    return BudgetProjection(
        spend=budget.month_spend,
        days_elapsed=elapsed,
        days_in_month=days_in_month,
        projected_spend=projected,
        projected_overspend=max(projected - budget.monthly_limit, ZERO),
    )
