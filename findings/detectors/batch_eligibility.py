"""Batch eligibility: background traffic on the synchronous API (DESIGN §8.2).

Rule, per production (feature, workflow, provider, model) of OpenAI or Anthropic traffic
not sent through the Batch API, with at least ``min_requests`` requests in the window,
when at least ``min_share`` of its requests show that nobody waits for the answer:

- *scheduled*: ``metadata.trigger`` is one of ``triggers`` (set by schedulers); or
- *off hours and no end user*: sent between ``off_hours_start`` and ``off_hours_end``
  (hours of the organization's time zone) and carrying no ``user_id``; or
- the workflow's name says so (``workflow_keywords``: nightly, digest, …) and the
  requests carry no ``user_id``.

Savings: the traffic's cost × ``batch_discount`` (both providers take 50 % off batch
requests) × 30 ÷ window days. Confidence: high when scheduled and off-hours or userless,
medium on one signal, low on the workflow name alone.
"""

from __future__ import annotations

from decimal import Decimal

from findings.calculations import batch_savings, monthly, share
from findings.detectors.base import (
    Detected,
    DetectionContext,
    Scope,
    pct,
    provider_label,
    series_points,
    usd,
)
from findings.models import FindingConfidence, FindingKind, RemediationKind
from findings.selectors import batch_candidates, features_by_id, ledger_daily_cost

KIND = FindingKind.BATCH_ELIGIBILITY
DEFAULTS = {
    "batch_discount": Decimal("0.5"),
    "off_hours_start": 0,
    "off_hours_end": 6,
    "triggers": ["schedule", "scheduled", "cron", "background", "job", "batch"],
    "workflow_keywords": ["nightly", "digest", "cron", "scheduled", "backfill", "batch",
                          "export", "reindex", "report"],
    "min_share": Decimal("0.8"),
    "min_requests": 100,
}  # fmt: skip
FORMULA = "monthly_savings = synchronous cost × batch_discount × 30 ÷ window days"


def detect(ctx: DetectionContext) -> list[Detected]:
    t = ctx.thresholds
    start, end = ctx.window
    rows = batch_candidates(
        organization=ctx.organization, start=start, end=end,
        timezone=ctx.organization.timezone,
        off_hours=(t["off_hours_start"], t["off_hours_end"]),
        triggers=t["triggers"], workflow_keywords=t["workflow_keywords"],
    )  # fmt: skip
    features = features_by_id(organization=ctx.organization)
    found = []
    for row in rows:
        requests = row["requests"]
        if requests < t["min_requests"] or row["cost"] <= 0:
            continue
        feature = features.get(row["feature_id"])
        if feature is not None and feature.status == feature.Status.RETIRED:
            continue  # orphaned spend: stop it rather than batch it
        scheduled = share(row["scheduled_requests"], requests)
        off_hours = share(row["off_hours_requests"], requests)
        userless = share(row["userless_requests"], requests)
        strong = t["min_share"]
        signals = []
        if scheduled >= strong:
            signals.append(f"{pct(scheduled)} of requests were started by a scheduler")
        if off_hours >= strong and userless >= strong:
            signals.append(
                f"{pct(off_hours)} ran between {t['off_hours_start']:02d}:00 and "
                f"{t['off_hours_end']:02d}:00 ({ctx.organization.timezone}) and "
                f"{pct(userless)} had no end user"
            )
        named = bool(row["keyword"]) and userless >= strong
        if not signals and not named:
            continue
        if scheduled >= strong and (off_hours >= strong or userless >= strong):
            confidence = FindingConfidence.HIGH
        elif signals:
            confidence = FindingConfidence.MEDIUM
        else:
            confidence = FindingConfidence.LOW
            signals.append(
                f"the workflow's name suggests background work ({row['keyword']!r}) and "
                f"{pct(userless)} of requests had no end user"
            )
        window_savings = batch_savings(row["cost"], t["batch_discount"])
        savings = monthly(window_savings, ctx.days)
        workflow = row["workflow"] or "(no workflow)"
        where = f"{feature or 'unattributed traffic'} / {workflow}"
        series = ledger_daily_cost(
            organization=ctx.organization, start=start, end=end, feature_id=row["feature_id"],
            workflow=row["workflow"], provider=row["provider"], model=row["model"],
            batch=False, environment="production",
        )  # fmt: skip
        scope = Scope(
            feature_id=row["feature_id"], provider=row["provider"], model=row["model"],
            environment="production",
        )  # fmt: skip
        found.append(
            Detected(
                kind=KIND,
                title=f"{where} on {row['model']} could use the Batch API: {usd(savings)}/mo",
                monthly_savings=savings,
                confidence=confidence,
                confidence_reason=_sentence("; ".join(signals)),
                evidence={
                    "formula": FORMULA,
                    "window": {
                        "start": start.isoformat(),
                        "end": end.isoformat(),
                        "days": ctx.days,
                    },
                    "workflow": row["workflow"],
                    "requests": requests,
                    "cost": str(row["cost"]),
                    "batch_discount": str(t["batch_discount"]),
                    "window_savings": str(window_savings),
                    "scheduled_share": str(scheduled),
                    "off_hours_share": str(off_hours),
                    "userless_share": str(userless),
                    "off_hours": [t["off_hours_start"], t["off_hours_end"]],
                    "timezone": ctx.organization.timezone,
                    "workflow_keyword": row["keyword"],
                    "series": series_points(series, start, end),
                },  # fmt: skip
                remediation=(
                    f"Submit {where} through the {provider_label(row['provider'])} Batch API "
                    f"(results within 24 hours at half price): collect the night's requests "
                    f"into one batch job and poll for its results."
                ),
                remediation_kind=RemediationKind.ENABLE_BATCH,
                scope=scope,
                fingerprint_parts=(*scope.parts(), f"workflow={row['workflow']}"),
            )
        )
    return found


def _sentence(text: str) -> str:
    # Not str.capitalize(): it would lower-case the rest ("UTC" → "utc").
    return text[:1].upper() + text[1:] + "."
