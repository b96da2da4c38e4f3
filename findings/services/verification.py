"""Verified savings: the scope's daily cost after implementation against the days before.

For an item implemented on day D (UTC) and the policy's ``verification_days`` N:
the baseline window is the N full days before D, ``[D − N, D)``, and the verification
window the N full days after it, ``[D + 1, D + 1 + N)``; day D itself, half old and
half new, counts in neither. Each window's average daily cost (USD a day, days without
usage count as $0) comes from the rollups of the item's scope:

- a provider-key scope: the provider's own daily usage buckets of that key, priced by
  Metron (``ProviderUsageBucket.estimated_cost``, narrowed by model when set), since a
  key's spend (an orphaned key above all) need not appear in instrumented traffic;
- otherwise the ledger's daily rollups (``DailyUsage.cost``) narrowed by each scope
  field the item sets (customer, feature, plan, provider, model, environment).

``realized_monthly_savings = (baseline − after) × 30``, in USD, rounded once to cents,
stored beside the estimate; negative when spend went up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import User
from findings.models import FindingsPolicy, RemediationItem, RemediationState
from findings.services.errors import IllegalTransition, WorkflowError
from findings.services.remediation import _label, _locked, _log, remediation_policy
from findings.services.roles import member_role_require
from ingestion.models import DailyUsage, ProviderUsageBucket
from metron.money import ZERO, quantize_money

logger = logging.getLogger(__name__)

DAYS_PER_MONTH = 30
NOT_IMPLEMENTED = "A {state} item cannot be verified: only implemented items are."
NOT_DUE = (
    "The verification window of this item ends on {end}: its savings can be measured "
    "from {due:%Y-%m-%d %H:%M} UTC."
)


@dataclass(frozen=True)
class VerificationWindows:
    """Half-open date ranges [start, end) before and after implementation."""

    baseline_start: date
    baseline_end: date
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def due_at(self) -> datetime:
        """When the verification window is complete (its end, 00:00 UTC)."""
        return datetime.combine(self.end, time.min, tzinfo=UTC)


def verification_windows(*, implemented_at: datetime, days: int) -> VerificationWindows:
    """The baseline and verification windows of an implementation at ``implemented_at``."""
    day = implemented_at.astimezone(UTC).date()
    return VerificationWindows(
        baseline_start=day - timedelta(days=days), baseline_end=day,
        start=day + timedelta(days=1), end=day + timedelta(days=1 + days),
    )  # fmt: skip


def scope_daily_cost(*, item: RemediationItem, start: date, end: date) -> Decimal:
    """Average daily cost (USD a day, unrounded) of the item's scope over [start, end)."""
    days = (end - start).days
    if days <= 0:
        return ZERO
    if item.provider_key_id:
        rows = ProviderUsageBucket.objects.filter(
            organization_id=item.organization_id, provider_key_id=item.provider_key_id,
            bucket_width="1d",
            bucket_start__gte=datetime.combine(start, time.min, tzinfo=UTC),
            bucket_start__lt=datetime.combine(end, time.min, tzinfo=UTC),
        )  # fmt: skip
        if item.model:
            rows = rows.filter(model=item.model)
        total = rows.aggregate(total=Sum("estimated_cost"))["total"]
    else:
        rows = DailyUsage.objects.filter(
            organization_id=item.organization_id, day__gte=start, day__lt=end
        )
        for name in ("customer_id", "feature_id", "plan_id"):
            if getattr(item, name) is not None:
                rows = rows.filter(**{name: getattr(item, name)})
        for name in ("provider", "model", "environment"):
            if getattr(item, name):
                rows = rows.filter(**{name: getattr(item, name)})
        total = rows.aggregate(total=Sum("cost"))["total"]
    return (total or ZERO) / days


@transaction.atomic
def remediation_verify(
    *,
    item: RemediationItem,
    actor: User | None = None,
    now: datetime | None = None,
    reason: str = "",
) -> RemediationItem:
    """Implemented → verified: measure realized savings once the verification window is over.

    ``actor`` None is the scheduler (``remediations_verify_due``); a person must be a
    member of the item's organization. Raises ``IllegalTransition`` before the window ends.
    """
    now = now or timezone.now()
    locked = _locked(item)
    if actor is not None:
        member_role_require(user=actor, organization=locked.organization)
    if locked.state != RemediationState.IMPLEMENTED:
        raise IllegalTransition(NOT_IMPLEMENTED.format(state=_label(locked.state)))
    policy = remediation_policy(organization=locked.organization)
    windows = verification_windows(
        implemented_at=locked.implemented_at, days=policy.verification_days
    )
    if now < windows.due_at:
        raise IllegalTransition(
            NOT_DUE.format(end=windows.end - timedelta(days=1), due=windows.due_at),
            code="verification_not_due",
        )
    baseline = scope_daily_cost(item=locked, start=windows.baseline_start, end=windows.baseline_end)
    after = scope_daily_cost(item=locked, start=windows.start, end=windows.end)
    # Rounded once, from the unrounded averages: cents a day times 30 would drift.
    realized = quantize_money((baseline - after) * DAYS_PER_MONTH)

    locked.baseline_start, locked.baseline_end = windows.baseline_start, windows.baseline_end
    locked.verification_start, locked.verification_end = windows.start, windows.end
    locked.baseline_daily_cost = quantize_money(baseline)
    locked.verified_daily_cost = quantize_money(after)
    locked.realized_monthly_savings = realized
    locked.verified_at = now
    locked.state = RemediationState.VERIFIED
    locked.save(
        update_fields=[
            "baseline_start", "baseline_end", "verification_start", "verification_end",
            "baseline_daily_cost", "verified_daily_cost", "realized_monthly_savings",
            "verified_at", "state", "updated_at",
        ]
    )  # fmt: skip
    measured = (
        f"realized ${realized}/mo against ${locked.estimated_monthly_savings}/mo estimated "
        f"(${locked.baseline_daily_cost}/day over {windows.days} days before, "
        f"${locked.verified_daily_cost}/day over {windows.days} days after)"
    )
    by = "Verified by the scheduled job" if actor is None else "Verified"
    _log(
        item=locked, actor=actor, from_state=RemediationState.IMPLEMENTED,
        reason=(reason or "").strip() or f"{by}: {measured}",
        baseline_daily_cost=locked.baseline_daily_cost,
        verified_daily_cost=locked.verified_daily_cost,
    )  # fmt: skip
    return locked


def remediations_verify_due(*, now: datetime | None = None) -> list[int]:
    """Verify every implemented item whose window is over, each in its own transaction.

    Returns the ids verified. Safe to run twice or in parallel: an item verified
    meanwhile is skipped.
    """
    now = now or timezone.now()
    policies: dict[int, FindingsPolicy] = {}
    verified = []
    items = RemediationItem.objects.filter(state=RemediationState.IMPLEMENTED).select_related(
        "organization"
    )
    for item in items.order_by("implemented_at", "pk"):
        policy = policies.get(item.organization_id)
        if policy is None:
            policy = policies[item.organization_id] = remediation_policy(
                organization=item.organization
            )
        windows = verification_windows(
            implemented_at=item.implemented_at, days=policy.verification_days
        )
        if now < windows.due_at:
            continue
        try:
            remediation_verify(item=item, actor=None, now=now)
        except WorkflowError as error:
            logger.info("remediation %s not verified: %s", item.pk, error)
            continue
        verified.append(item.pk)
    return verified
