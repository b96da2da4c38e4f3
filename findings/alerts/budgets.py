"""Budget alerts: a finding for each active budget in ``warning`` or ``exceeded`` this month.

The rule first brings the budgets up to date (``budgets_evaluate``: the one exception to
"a rule never writes", since the budget's state machine, its transition log and its
notifications are the source of truth and evaluating twice changes nothing), then
reports the budgets above their warning threshold. When a budget drops back to ok, is
deactivated or a new month starts, the rule stops reporting it and the run resolves the
finding. One finding per budget, whatever its state: warning → exceeded updates it.

At stake (USD a month): the projected overspend, (spend ÷ days elapsed × days in the
month) − limit, at least 0; today counts as a whole day, so the projection errs low.
"""

from __future__ import annotations

from datetime import UTC, timedelta

from findings.detectors.base import Detected, DetectionContext, Scope, series_points, usd
from findings.models import Budget, BudgetState, FindingConfidence, FindingKind, RemediationKind
from findings.services.budgets import (
    budget_daily_series,
    budget_percent,
    budget_projection,
    budget_scope_label,
    budgets_evaluate,
    month_bounds,
)

KIND = FindingKind.BUDGET
DEFAULTS: dict = {}
FORMULA = (
    "projected_overspend = max(spend / days_elapsed × days_in_month − limit, 0); "
    "state: exceeded when spend ≥ limit, warning when spend ≥ warning_percent % of limit"
)


def detect(ctx: DetectionContext) -> list[Detected]:
    budgets_evaluate(organization=ctx.organization, now=ctx.now)
    today = ctx.now.astimezone(UTC).date()
    month, _ = month_bounds(today)
    budgets = (
        Budget.objects.filter(
            organization=ctx.organization,
            active=True,
            month=month,
            state__in=[BudgetState.WARNING, BudgetState.EXCEEDED],
        )
        .select_related("feature", "customer", "plan", "provider_key")
        .order_by("pk")
    )
    found = []
    for budget in budgets:
        projection = budget_projection(budget=budget, now=ctx.now)
        spend, limit = budget.month_spend, budget.monthly_limit
        percent = budget_percent(spend, limit)
        label = budget_scope_label(budget)
        exceeded = budget.state == BudgetState.EXCEEDED
        end = today + timedelta(days=1)
        series = series_points(budget_daily_series(budget=budget, start=month, end=end), month, end)
        if exceeded:
            title = (
                f"Budget “{budget.name}” exceeded: {usd(spend)} of {usd(limit)} in {month:%B %Y}"
            )
            confidence, reason = (
                FindingConfidence.HIGH,
                f"The month's spend already passed the limit ({percent} %); the overspend "
                f"figure is a straight-line projection over {projection.days_elapsed} of "
                f"{projection.days_in_month} days.",
            )
        else:
            title = (
                f"Budget “{budget.name}” at {percent} % of its limit: {usd(spend)} of "
                f"{usd(limit)} in {month:%B %Y}"
            )
            confidence, reason = (
                FindingConfidence.MEDIUM,
                f"Spend passed the {budget.warning_percent} % warning threshold; whether it "
                f"exceeds the limit is a straight-line projection over "
                f"{projection.days_elapsed} of {projection.days_in_month} days.",
            )
        remediation = (
            f"Review {label}'s spend this month (the chart shows it day by day): find "
            f"what grew, then either cut it (a cheaper model, batch, caching, a quota) or "
            f"raise the budget's limit if the growth is intended."
        )
        found.append(
            Detected(
                kind=KIND,
                title=title,
                monthly_savings=projection.projected_overspend,
                confidence=confidence,
                confidence_reason=reason,
                evidence={
                    "formula": FORMULA,
                    "budget_id": budget.pk,
                    "budget": budget.name,
                    "scope": budget.scope,
                    "scope_label": label,
                    "state": budget.state,
                    "month": month.isoformat(),
                    "spend": str(spend),
                    "limit": str(limit),
                    "percent": None if percent is None else str(percent),
                    "warning_percent": budget.warning_percent,
                    "days_elapsed": projection.days_elapsed,
                    "days_in_month": projection.days_in_month,
                    "projected_spend": str(projection.projected_spend),
                    "projected_overspend": str(projection.projected_overspend),
                    "series": series,
                },
                remediation=remediation,
                # A customer over its budget is a quota question; other scopes have
                # several possible fixes, named in the remediation text.
                remediation_kind=(
                    RemediationKind.QUOTA if budget.scope == Budget.Scope.CUSTOMER else ""
                ),
                scope=Scope(
                    customer_id=budget.customer_id,
                    feature_id=budget.feature_id,
                    plan_id=budget.plan_id,
                    provider_key_id=budget.provider_key_id,
                ),
                fingerprint_parts=(f"budget={budget.pk}",),
            )
        )
    return found
