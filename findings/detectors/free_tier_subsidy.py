"""Free-tier subsidy: free or trial accounts costing more than the tier can carry
(DESIGN §8.6).

What a tier can carry is an allowance of AI cost per account and month
(``allowance_per_account``, USD): what the business accepts to spend on an account that
pays nothing, as acquisition cost. Rule, per free or trial plan: the accounts whose AI
cost, from the rolling 30-day economics snapshot (the rollups when there is none), comes
to more than the allowance a month; at least ``min_accounts`` of them.

Savings: Σ over those accounts of (monthly AI cost − allowance), what a quota at the
allowance would save; monthly AI cost = the period's cost × 30 ÷ its days. Confidence:
high when read from an economics snapshot ending with the window, medium otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from findings.calculations import ZERO, allowance_excess, monthly
from findings.detectors.base import Detected, DetectionContext, Scope, series_points, usd
from findings.models import FindingConfidence, FindingKind, RemediationKind
from findings.selectors import customers_by_id, daily_cost, free_tier_usage, plans_by_id

KIND = FindingKind.FREE_TIER_SUBSIDY
DEFAULTS = {
    "allowance_per_account": Decimal("5.00"),
    "min_accounts": 1,
}
FORMULA = (
    "monthly_savings = Σ over accounts above the allowance of (AI cost × 30 ÷ period days "
    "− allowance_per_account)"
)


def detect(ctx: DetectionContext) -> list[Detected]:
    t = ctx.thresholds
    allowance = t["allowance_per_account"]
    start, end = ctx.window
    usage = free_tier_usage(organization=ctx.organization, start=start, end=end)
    days = (usage.period_end - usage.period_start).days
    over: dict[int, list[tuple[int, Decimal, Decimal]]] = defaultdict(list)
    for row in usage.rows:
        cost = monthly(row["cost"], days)
        if cost > allowance:
            over[row["plan_id"]].append(
                (row["customer_id"], cost, allowance_excess(cost, allowance))
            )
    plans = plans_by_id(organization=ctx.organization)
    customers = customers_by_id(
        organization=ctx.organization, ids=(c for rows in over.values() for c, _, _ in rows)
    )
    from_snapshot = usage.source.startswith("economics") and usage.period_end == end
    found = []
    for plan_id, accounts in over.items():
        if len(accounts) < t["min_accounts"]:
            continue
        plan = plans[plan_id]
        excess = sum((e for _, _, e in accounts), ZERO)
        cost = sum((c for _, c, _ in accounts), ZERO)
        accounts.sort(key=lambda a: a[1], reverse=True)
        tier = "trial" if plan.is_trial and not plan.is_free else "free"
        reason = (
            f"{len(accounts)} {plan} accounts cost {usd(cost)} a month together, against an "
            f"allowance of {usd(allowance)} per account ({usage.source})."
        )
        confidence = FindingConfidence.HIGH if from_snapshot else FindingConfidence.MEDIUM
        series = daily_cost(
            organization=ctx.organization, start=start, end=end, plan_id=plan_id,
            customer_id__in=[c for c, _, _ in accounts],
        )  # fmt: skip
        found.append(
            Detected(
                kind=KIND,
                title=(
                    f"{len(accounts)} {plan} account{'s' * (len(accounts) != 1)} cost "
                    f"{usd(excess)}/mo above the {tier} allowance"
                ),
                monthly_savings=excess,
                confidence=confidence,
                confidence_reason=reason,
                evidence={
                    "formula": FORMULA,
                    "source": usage.source,
                    "period": {
                        "start": usage.period_start.isoformat(),
                        "end": usage.period_end.isoformat(),
                        "days": days,
                    },
                    "allowance_per_account": str(allowance),
                    "allowance_rule": (
                        "AI cost a free or trial account may incur a month "
                        "(findings policy threshold free_tier_subsidy.allowance_per_account)"
                    ),
                    "plan": {
                        "id": plan.pk,
                        "code": plan.code,
                        "price": str(plan.price),
                        "is_free": plan.is_free,
                        "is_trial": plan.is_trial,
                    },
                    "accounts": [
                        {
                            "customer_id": pk,
                            "external_id": getattr(customers.get(pk), "external_id", None),
                            "name": str(customers.get(pk, "")),
                            "monthly_cost": str(c),
                            "excess": str(e),
                        }
                        for pk, c, e in accounts
                    ],
                    "monthly_cost": str(cost),
                    "series": series_points(series, start, end),
                },  # fmt: skip
                remediation=(
                    f"Put a monthly quota on {plan} at the allowance (requests or tokens of "
                    f"the costliest features), and invite the heaviest accounts to upgrade."
                ),
                remediation_kind=RemediationKind.QUOTA,
                scope=Scope(plan_id=plan_id),
            )
        )
    return found
