"""One row of every findings model an admin shows, for the admin smoke and tenancy tests.

``tests/admin_objects.py`` merges these into ``build_catalog``. Rows are made the way the
product makes them (a remediation item through its service, so its transition log holds
the creation); names carry ``marker``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from findings.models import (
    Budget,
    BudgetTransition,
    DetectorRun,
    Finding,
    FindingActivity,
    FindingConfidence,
    FindingKind,
    FindingsPolicy,
    NotificationDelivery,
    RemediationItem,
    RemediationKind,
    RemediationTransition,
    WebhookEndpoint,
)
from findings.services.remediation import remediation_create

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def build_findings_objects(organization, marker: str, *, customer, plan, feature, user):
    """A policy, a detector run, a finding with its activity, a remediation item with its
    transition, a budget with a transition, a webhook endpoint and a delivery."""
    policy, _ = FindingsPolicy.objects.get_or_create(organization=organization)
    run = DetectorRun.objects.create(
        organization=organization, started_at=T0, finished_at=T0, status="succeeded",
        window_start=date(2026, 10, 3), window_end=date(2026, 11, 2), created=1,
        error=f"{marker} note",
    )  # fmt: skip
    finding = Finding.objects.create(
        organization=organization, kind=FindingKind.FREE_TIER_SUBSIDY,
        fingerprint=f"{marker}-fingerprint", title=f"{marker} finding on {plan.code}",
        monthly_savings=Decimal("420.00"), confidence=FindingConfidence.MEDIUM,
        confidence_reason=f"{marker} reason", remediation=f"{marker} remediation",
        remediation_kind=RemediationKind.REPRICE_PLAN, evidence={
            "formula": "cost × 30 / days", "cost": "14.00",
            "series": [{"day": "2026-11-01", "cost": "14.00"}],
        },
        customer=customer, feature=feature, plan=plan, window_start=date(2026, 10, 3),
        window_end=date(2026, 11, 2), first_seen_at=T0, last_seen_at=T0, last_run=run,
    )  # fmt: skip
    activity = FindingActivity.objects.create(
        organization=organization, finding=finding, action="created", to_status="open",
        reason=f"{marker} found",
    )  # fmt: skip
    item = remediation_create(
        actor=user, finding=finding, title=f"{marker} reprice", kind=RemediationKind.REPRICE_PLAN
    )
    budget = Budget.objects.create(
        organization=organization, name=f"{marker} budget", scope=Budget.Scope.PLAN, plan=plan,
        monthly_limit=Decimal("100.00"),
    )  # fmt: skip
    budget_transition = BudgetTransition.objects.create(
        organization=organization, budget=budget, month=date(2026, 11, 1), from_state="ok",
        to_state="warning", spend=Decimal("85.00"), limit=Decimal("100.00"),
    )  # fmt: skip
    endpoint = WebhookEndpoint.objects.create(
        organization=organization, url=f"http://127.0.0.1:9/{marker}",
        description=f"{marker} hook", secret=f"whsec_{marker}",
    )  # fmt: skip
    delivery = NotificationDelivery.objects.create(
        organization=organization, event_type="finding.created", channel="webhook",
        endpoint=endpoint, recipient=endpoint.url, payload={"title": f"{marker} finding"},
        status="failed", attempts=6, last_error=f"{marker} refused",
    )  # fmt: skip
    return {
        FindingsPolicy: policy,
        DetectorRun: run,
        Finding: finding,
        FindingActivity: activity,
        RemediationItem: item,
        RemediationTransition: RemediationTransition.objects.get(item=item),
        Budget: budget,
        BudgetTransition: budget_transition,
        WebhookEndpoint: endpoint,
        NotificationDelivery: delivery,
    }
