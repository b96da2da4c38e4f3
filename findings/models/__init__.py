"""Findings and the review workflow (DESIGN §8).

- ``findings``: the organization's thresholds, detector runs, findings (waste and
  alerts), their comments and their append-only activity log.
- ``remediation``: remediation items, their approvals and their append-only
  transition log (maker-checker, immutable once approved).
- ``budgets``: monthly budgets and their ok → warning → exceeded transitions.
- ``notifications``: webhook endpoints and the delivery log of emails and webhooks.
"""

from findings.models.budgets import Budget, BudgetState, BudgetTransition
from findings.models.findings import (
    ALERT_KINDS,
    WASTE_KINDS,
    DetectorRun,
    Finding,
    FindingActivity,
    FindingComment,
    FindingConfidence,
    FindingKind,
    FindingsPolicy,
    FindingStatus,
)
from findings.models.notifications import NotificationDelivery, WebhookEndpoint
from findings.models.remediation import (
    PRICING_KINDS,
    RemediationApproval,
    RemediationItem,
    RemediationKind,
    RemediationState,
    RemediationTransition,
)

__all__ = [
    "ALERT_KINDS",
    "PRICING_KINDS",
    "WASTE_KINDS",
    "Budget",
    "BudgetState",
    "BudgetTransition",
    "DetectorRun",
    "Finding",
    "FindingActivity",
    "FindingComment",
    "FindingConfidence",
    "FindingKind",
    "FindingStatus",
    "FindingsPolicy",
    "NotificationDelivery",
    "RemediationApproval",
    "RemediationItem",
    "RemediationKind",
    "RemediationState",
    "RemediationTransition",
    "WebhookEndpoint",
]
