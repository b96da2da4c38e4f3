"""Running the detectors and alert rules, and turning their candidates into findings.

A run evaluates every registered rule (``findings.detectors.rules``) over the window
and reconciles its findings by fingerprint: a new condition creates a finding, a known one
is refreshed (numbers, evidence, window), a resolved one whose condition is back is
reopened, and an active one whose condition is gone is resolved automatically. A
dismissed finding stays dismissed while its condition holds. Every change the run makes is
appended to the finding's activity with no actor.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Organization
from findings.detectors import rules
from findings.detectors.base import Detected, DetectionContext
from findings.models import (
    WASTE_KINDS,
    DetectorRun,
    Finding,
    FindingActivity,
    FindingsPolicy,
    FindingStatus,
)
from findings.selectors import findings_policy_get
from findings.services.notifications import notifications_enqueue
from metron.money import quantize_money

logger = logging.getLogger(__name__)

# Statuses a cleared condition resolves; dismissed and resolved findings are left alone.
ACTIVE_STATUSES = (
    FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED, FindingStatus.IN_PROGRESS,
    FindingStatus.SNOOZED,
)  # fmt: skip
# A rerun logs an "updated" activity only when the dollars moved this much: the share of
# the previous figure, and at least the absolute amount (USD a month).
MATERIAL_CHANGE_SHARE = Decimal("0.10")
MATERIAL_CHANGE_MIN = Decimal("1.00")
UNKNOWN_KINDS = "Unknown finding kind(s): {kinds} (known: {known})."


@dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    resolved: int = 0


def detectors_run(
    *,
    organization: Organization,
    now: datetime | None = None,
    trigger: str = "command",
    kinds: Iterable[str] | None = None,
) -> DetectorRun:
    """Run the registered rules (or those of ``kinds``) over the last 30 full days before
    ``now`` and reconcile the organization's findings; returns the recorded run.

    Each rule is applied in its own transaction: a rule that raises leaves its findings as
    they were, the others still apply, and the run ends ``failed`` with the error.
    """
    now = now or timezone.now()
    registry = rules()
    if kinds is not None:
        kinds = [str(kind) for kind in kinds]
        unknown = sorted(set(kinds) - registry.keys())
        if unknown:
            raise ValueError(UNKNOWN_KINDS.format(kinds=", ".join(unknown),
                                                  known=", ".join(registry)))  # fmt: skip
        registry = {kind: rule for kind, rule in registry.items() if kind in kinds}
    policy = findings_policy_get(organization=organization)
    ctx = DetectionContext.build(organization=organization, policy=policy, now=now)
    run = DetectorRun.objects.create(
        organization=organization, started_at=now, trigger=trigger,
        window_start=ctx.window_start, window_end=ctx.window_end,
    )  # fmt: skip
    counts = _Counts()
    errors = []
    for kind, rule in registry.items():
        try:
            with transaction.atomic():
                # One run at a time per organization applies a rule: concurrent runs
                # would race to create the same fingerprints.
                FindingsPolicy.objects.select_for_update().filter(pk=policy.pk).first()
                candidates = rule.detect(ctx.for_rule(rule))
                rule_counts = _reconcile(run=run, ctx=ctx, kind=kind, candidates=candidates)
        except Exception as exc:  # one broken rule must not stop the others
            logger.exception("detector %s failed for organization %s", kind, organization.pk)
            errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            continue
        counts.created += rule_counts.created
        counts.updated += rule_counts.updated
        counts.resolved += rule_counts.resolved
    run.created, run.updated, run.resolved = counts.created, counts.updated, counts.resolved
    run.status = DetectorRun.Status.FAILED if errors else DetectorRun.Status.SUCCEEDED
    run.error = "\n".join(errors)
    run.finished_at = timezone.now()
    run.save(update_fields=["created", "updated", "resolved", "status", "error", "finished_at",
                            "updated_at"])  # fmt: skip
    return run


def _reconcile(
    *, run: DetectorRun, ctx: DetectionContext, kind: str, candidates: list[Detected]
) -> _Counts:
    """Create, refresh, reopen and auto-resolve the findings of one rule."""
    organization, policy, now = ctx.organization, ctx.policy, ctx.now
    existing = {
        finding.fingerprint: finding
        for finding in Finding.objects.select_for_update().filter(
            organization=organization, kind=kind
        )
    }
    counts = _Counts()
    activity: list[FindingActivity] = []
    produced: set[str] = set()
    for detected in candidates:
        if str(detected.kind) != kind:
            raise ValueError(f"rule {kind} returned a {detected.kind} candidate")
        savings = quantize_money(detected.monthly_savings)
        if kind in WASTE_KINDS and savings < policy.min_monthly_savings:
            continue  # below the organization's floor: not worth anyone's time
        fingerprint = detected.fingerprint
        if fingerprint in produced:
            raise ValueError(f"rule {kind} returned fingerprint {fingerprint} twice")
        produced.add(fingerprint)
        values = {
            "title": detected.title[:300],
            "monthly_savings": savings,
            "confidence": detected.confidence,
            "confidence_reason": detected.confidence_reason,
            "evidence": jsonable(detected.evidence),
            "remediation": detected.remediation,
            "remediation_kind": detected.remediation_kind,
            "window_start": ctx.window_start,
            "window_end": ctx.window_end,
            "last_seen_at": now,
            "last_run": run,
            **detected.scope.finding_fields(),
        }
        finding = existing.get(fingerprint)
        if finding is None:
            finding = Finding.objects.create(
                organization=organization, kind=kind, fingerprint=fingerprint,
                status=FindingStatus.OPEN, first_seen_at=now, **values,
            )  # fmt: skip
            counts.created += 1
            activity.append(_activity(finding, "created", "", FindingStatus.OPEN,
                                      {"monthly_savings": str(savings)}))  # fmt: skip
            if savings >= policy.notify_min_savings:
                transaction.on_commit(
                    partial(notifications_enqueue, organization=organization,
                            event_type="finding.created", payload=_payload(finding))
                )  # fmt: skip
            continue
        previous, status = finding.monthly_savings, finding.status
        for name, value in values.items():
            setattr(finding, name, value)
        if status == FindingStatus.RESOLVED:
            finding.status = FindingStatus.OPEN
            finding.auto_resolved = False
        finding.save()
        counts.updated += 1
        amounts = {"from": str(previous), "to": str(savings)}
        if status == FindingStatus.RESOLVED:
            activity.append(_activity(finding, "reopened", status, FindingStatus.OPEN, amounts,
                                      "The condition is back."))  # fmt: skip
        elif _material(previous, savings):
            activity.append(_activity(finding, "updated", status, status, amounts))
    for fingerprint, finding in existing.items():
        if fingerprint in produced or finding.status not in ACTIVE_STATUSES:
            continue
        status = finding.status
        finding.status = FindingStatus.RESOLVED
        finding.auto_resolved = True
        finding.snoozed_until = None
        finding.last_run = run
        finding.save(update_fields=["status", "auto_resolved", "snoozed_until", "last_run",
                                    "updated_at"])  # fmt: skip
        counts.resolved += 1
        activity.append(_activity(finding, "auto_resolved", status, FindingStatus.RESOLVED,
                                  {"monthly_savings": str(finding.monthly_savings)},
                                  "The condition cleared in the latest run."))  # fmt: skip
    FindingActivity.objects.bulk_create(activity)
    return counts


def _material(previous: Decimal, current: Decimal) -> bool:
    change = abs(current - previous)
    return change >= MATERIAL_CHANGE_MIN and change >= abs(previous) * MATERIAL_CHANGE_SHARE


def _activity(finding, action, from_status, to_status, details, reason="") -> FindingActivity:
    return FindingActivity(
        organization_id=finding.organization_id, finding=finding, actor=None, action=action,
        from_status=from_status, to_status=to_status, reason=reason, details=details,
    )  # fmt: skip


def _payload(finding: Finding) -> dict[str, Any]:
    return {
        "finding_id": finding.pk, "kind": finding.kind, "title": finding.title,
        "monthly_savings": str(finding.monthly_savings), "confidence": finding.confidence,
        "remediation": finding.remediation, "status": finding.status,
    }  # fmt: skip


def jsonable(value: Any) -> Any:
    """``value`` with Decimals as strings and dates as ISO text, for a JSON field."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
