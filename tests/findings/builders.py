"""Planting usage for the detector tests, through the real ingest service.

Events are raw payloads as services send them; ``ingest`` hands them to
``usage_events_ingest`` (validation, attribution, plan at event time, price book costing,
rollups), so every figure a detector reads is the production one. Time is fixed: ``NOW``
is noon on 2026-11-20 UTC, so the detectors' window is the 30 days 2026-10-21 …
2026-11-19 (``WINDOW_START`` inclusive, ``WINDOW_END`` exclusive).

Prices used in the hand computations (USD per million tokens, genai-prices list):

=================== ======= ============ ============ ========
model               input   cached input cache write  output
=================== ======= ============ ============ ========
gpt-4.1             2       0.5          2            8
gpt-4.1-mini        0.4     0.1          0.4          1.6
gpt-4o              2.5     1.25         2.5          10
gpt-4o-mini         0.15    0.075        0.15         0.6
claude-sonnet-4-5   3       0.3          3.75         15
claude-opus-4-1     15      1.5          18.75        75
=================== ======= ============ ============ ========
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from accounts.models import Feature
from findings.detectors import rule_get
from findings.detectors.base import Detected, DetectionContext
from findings.models import FindingsPolicy
from ingestion.services.ingest import usage_events_ingest
from ingestion.validation import MAX_BATCH

D = Decimal
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WINDOW_START = date(2026, 10, 21)
WINDOW_END = date(2026, 11, 20)
WINDOW_DAYS = [WINDOW_START + timedelta(days=n) for n in range(30)]

_ids = itertools.count(1)


def at(day: date, hour: int = 12, minute: int = 0) -> str:
    """An ISO timestamp on ``day`` (UTC)."""
    return datetime.combine(day, time(hour, minute), UTC).isoformat()


def event(day: date, *, hour: int = 12, minute: int = 0, **fields) -> dict:
    """A raw production event on ``day``: gpt-4o, 1,000 in / 100 out, unless told."""
    raw = {
        "event_id": f"f-{next(_ids):07d}",
        "timestamp": at(day, hour, minute),
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": 1000,
        "output_tokens": 100,
    }
    raw.update(fields)
    return {key: value for key, value in raw.items() if value is not None}


def spread(count: int, *, days: list[date] = WINDOW_DAYS, **fields) -> list[dict]:
    """``count`` events spread round-robin over ``days`` (minutes apart within an hour)."""
    return [
        event(days[n % len(days)], minute=(n // len(days)) % 60, **fields) for n in range(count)
    ]


def ingest(organization, events: list[dict], *, now: datetime = NOW) -> None:
    """Send ``events`` through the ingest service; every one must be accepted."""
    for first in range(0, len(events), MAX_BATCH):
        result = usage_events_ingest(
            organization=organization, raw_events=events[first : first + MAX_BATCH], now=now
        )
        refused = [o for o in result.outcomes if o.status != "accepted"]
        assert not refused, refused[:3]


def policy_thresholds(organization, **per_rule) -> FindingsPolicy:
    """Set the organization's per-rule threshold overrides (``kind={name: value}``)."""
    policy, _ = FindingsPolicy.objects.update_or_create(
        organization=organization, defaults={"thresholds": per_rule}
    )
    return policy


def detect(organization, kind: str, *, now: datetime = NOW) -> list[Detected]:
    """What one rule finds over the window before ``now``, with the organization's policy."""
    policy, _ = FindingsPolicy.objects.get_or_create(organization=organization)
    rule = rule_get(kind)
    ctx = DetectionContext.build(organization=organization, policy=policy, now=now)
    return rule.detect(ctx.for_rule(rule))


def feature(organization, key: str, **fields) -> Feature:
    return Feature.objects.create(organization=organization, key=key, name=key, **fields)
