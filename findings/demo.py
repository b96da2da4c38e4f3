"""The findings part of ``seed_demo``: a demo policy, then the detectors over the demo
organization.

``seed_demo`` calls :func:`demo_seed` after economics (apps in INSTALLED_APPS order), so the
free-tier detector reads fresh snapshots. A re-run updates the same findings (fingerprints).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from accounts.models import Organization, Plan, Role, User
from economics.models import CustomerEconomics
from economics.selectors import snapshot_for_period
from findings.models import (
    DetectorRun,
    Finding,
    FindingKind,
    FindingsPolicy,
    FindingStatus,
    RemediationItem,
    RemediationKind,
    RemediationState,
)
from findings.selectors import findings_identified
from findings.services.detection import detectors_run
from findings.services.remediation import (
    remediation_approve,
    remediation_create,
    remediation_implement,
    remediation_submit,
)
from findings.services.roles import member_role
from findings.services.triage import finding_acknowledge, finding_assign, finding_start
from metron.money import quantize_money

# The demo company spends about $10,000 a month on AI and wants to see waste from $10 a
# month (the default floor is $25): its onboarding classifier on gpt-4.1 costs it $15.
DEMO_MIN_MONTHLY_SAVINGS = Decimal("10.00")


def findings_demo_seed(*, organization: Organization, now: datetime | None = None) -> DetectorRun:
    """Set the demo policy once (a later edit by ops is kept), then run every rule."""
    FindingsPolicy.objects.get_or_create(
        organization=organization,
        defaults={"min_monthly_savings": DEMO_MIN_MONTHLY_SAVINGS},
    )
    return detectors_run(organization=organization, now=now, trigger="demo")


def demo_seed(*, organization: Organization) -> str:
    """``seed_demo``'s hook: run the detectors and sum up what they found."""
    run = findings_demo_seed(organization=organization)
    workflow = findings_demo_workflow_seed(organization=organization)
    count, savings = findings_identified(organization=organization)
    summary = (
        f"detectors {run.status} ({run.created} new, {run.updated} updated, {run.resolved} "
        f"resolved); {count} findings · ${quantize_money(savings):,}/mo identified"
    )
    if run.error:
        summary += f"; errors: {run.error}"
    return f"{summary}; {workflow}"


# --- the review workflow in flight ------------------------------------------------------------

# A reprice brings a plan's underwater accounts back to the underwater threshold (AI cost
# ÷ revenue): the revenue it takes is AI cost ÷ threshold, the added revenue that minus what
# they pay now.
DEFAULT_UNDERWATER_THRESHOLD = Decimal("0.40")


def _demo_staff(organization: Organization) -> dict[str, User]:
    """The demo's staff users by role (username = role), if the accounts seed made them."""
    users = User.objects.filter(
        memberships__organization=organization, username__in=[role.value for role in Role]
    )
    found = {}
    for user in users:
        role = member_role(user=user, organization=organization)
        if role == user.username:
            found[role] = user
    return found


def _top_finding(organization: Organization, kind: str) -> Finding | None:
    return (
        Finding.objects.filter(organization=organization, kind=kind)
        .exclude(status__in=(FindingStatus.RESOLVED, FindingStatus.DISMISSED))
        .order_by("-monthly_savings", "id")
        .first()
    )


def _approve_until_decided(item: RemediationItem, approvers: list[User]) -> RemediationItem:
    """Approve ``item`` by each approver in turn until it is approved (1 or 2 approvals)."""
    for approver in approvers:
        if item.state != RemediationState.PENDING_APPROVAL:
            break
        item = remediation_approve(item=item, actor=approver, reason="Reviewed the evidence.")
    return item


@dataclass(frozen=True)
class _Repricing:
    """A paid plan whose underwater accounts a reprice would bring back to the threshold."""

    plan: Plan
    period: str
    threshold: Decimal
    accounts: list[CustomerEconomics]
    cost: Decimal  # USD, the accounts' AI cost in the period
    revenue: Decimal  # USD, what they paid
    added_revenue: Decimal  # USD a month: Σ (AI cost ÷ threshold − revenue)


def _underwater_repricing(organization: Organization) -> _Repricing | None:
    """The paid plan with the most AI cost in underwater accounts in the latest month."""
    snapshot = snapshot_for_period(organization=organization, period=None)
    if snapshot is None:
        return None
    threshold = Decimal(
        str((snapshot.policy or {}).get("underwater_threshold") or DEFAULT_UNDERWATER_THRESHOLD)
    )
    rows = (
        CustomerEconomics.objects.filter(
            snapshot=snapshot, underwater=True, plan__isnull=False, plan__price__gt=0
        )
        .select_related("customer", "plan")
        .order_by("-ai_cost", "customer__external_id")
    )
    by_plan: dict[int, list[CustomerEconomics]] = {}
    for row in rows:
        by_plan.setdefault(row.plan_id, []).append(row)
    if not by_plan or threshold <= 0:
        return None
    accounts = max(by_plan.values(), key=lambda group: sum(row.ai_cost for row in group))
    cost = sum((row.ai_cost for row in accounts), Decimal(0))
    revenue = sum((row.revenue for row in accounts), Decimal(0))
    added = sum((max(row.ai_cost / threshold - row.revenue, Decimal(0)) for row in accounts),
                Decimal(0))  # fmt: skip
    return _Repricing(
        plan=accounts[0].plan, period=f"{snapshot.period_start:%Y-%m}", threshold=threshold,
        accounts=accounts, cost=cost, revenue=revenue, added_revenue=quantize_money(added),
    )  # fmt: skip


@transaction.atomic
def findings_demo_workflow_seed(*, organization: Organization) -> str:
    """Leave the demo with the review workflow in flight, through the services and as the
    demo staff (ops, finance, engineering, admin; maker-checker holds: nobody approves
    their own item):

    - the costliest model-overkill finding acknowledged by ops, who requested and
      submitted a model swap: pending approval by another member;
    - a repricing of the paid plan whose underwater accounts cost most (their added revenue
      at the underwater threshold), requested and submitted by ops: a pricing action,
      pending finance approval;
    - the costliest prompt-caching gap taken on by engineering, whose "enable caching"
      item ops (and an admin when two approvals are needed) approved: implemented, its
      savings measured by the scheduler once the verification window has passed.

    Idempotent: an item already seeded (same kind and title) is left as it is.
    """
    staff = _demo_staff(organization)
    missing = [role.value for role in (Role.OPS, Role.FINANCE, Role.ENGINEERING, Role.ADMIN)
               if role.value not in staff]  # fmt: skip
    if missing:
        return f"workflow not seeded: no demo user for {', '.join(missing)}"
    ops, engineering, admin = staff[Role.OPS], staff[Role.ENGINEERING], staff[Role.ADMIN]
    done = []

    def seeded(kind: str, title: str) -> bool:
        return RemediationItem.objects.filter(
            organization=organization, kind=kind, title=title
        ).exists()

    overkill = _top_finding(organization, FindingKind.MODEL_OVERKILL)
    if overkill is not None:
        title = f"Model swap: {overkill.title}"[:300]
        if not seeded(RemediationKind.MODEL_SWAP, title):
            if overkill.status == FindingStatus.OPEN:
                overkill = finding_acknowledge(finding=overkill, actor=ops)
            finding_assign(finding=overkill, actor=ops, owner=ops)
            item = remediation_create(
                actor=ops, finding=overkill, kind=RemediationKind.MODEL_SWAP, title=title,
                parameters={"from_model": overkill.model,
                            "to_model": str(overkill.evidence.get("alternative_model", ""))},
            )  # fmt: skip
            remediation_submit(item=item, actor=ops)
            done.append("a model swap pending approval")

    repricing = _underwater_repricing(organization)
    if repricing is not None:
        plan = repricing.plan
        title = f"Reprice {plan.name} for its {len(repricing.accounts)} underwater accounts"
        if not seeded(RemediationKind.REPRICE_PLAN, title):
            names = ", ".join(row.customer.name for row in repricing.accounts[:5])
            percent = format((repricing.threshold * 100).normalize(), "f")
            item = remediation_create(
                actor=ops, organization=organization, kind=RemediationKind.REPRICE_PLAN,
                title=title, plan=plan, estimated_monthly_savings=repricing.added_revenue,
                description=(
                    f"In {repricing.period}, {len(repricing.accounts)} {plan.name} accounts "
                    f"({names}) cost ${quantize_money(repricing.cost):,} in AI against "
                    f"${quantize_money(repricing.revenue):,} of revenue. Move them to a usage "
                    f"tier priced so their AI cost is {percent} % of what they pay: "
                    f"${repricing.added_revenue:,} a month more."
                ),
                parameters={
                    "plan": plan.code, "current_price": str(plan.price),
                    "target_cost_ratio": str(repricing.threshold),
                    "accounts": [row.customer.external_id for row in repricing.accounts],
                },
            )  # fmt: skip
            remediation_submit(item=item, actor=ops)
            done.append(f"a {plan.name} repricing pending finance approval")

    caching = _top_finding(organization, FindingKind.PROMPT_CACHING_GAP)
    if caching is not None:
        title = f"Enable caching: {caching.title}"[:300]
        if not seeded(RemediationKind.ENABLE_CACHING, title):
            if caching.status in (FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED):
                caching = finding_start(finding=caching, actor=engineering)
            finding_assign(finding=caching, actor=engineering, owner=engineering)
            item = remediation_create(
                actor=engineering, finding=caching, kind=RemediationKind.ENABLE_CACHING,
                title=title,
            )  # fmt: skip
            item = remediation_submit(item=item, actor=engineering)
            item = _approve_until_decided(item, [ops, admin])
            if item.state == RemediationState.APPROVED:
                remediation_implement(
                    item=item, actor=engineering, reason="Cached prefix shipped to production."
                )
                done.append("an approved caching change implemented")
    if not done:
        return "workflow already seeded"
    return "workflow: " + ", ".join(done)
