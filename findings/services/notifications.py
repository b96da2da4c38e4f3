"""Outgoing notifications (email and signed webhooks) with retries and a delivery log."""

from __future__ import annotations

from accounts.models import Organization
from findings.models import NotificationDelivery


def notifications_enqueue(
    *, organization: Organization, event_type: str, payload: dict
) -> list[NotificationDelivery]:
    """Record one delivery per subscribed recipient of ``event_type`` and send them after commit."""
    # Being written: see the notifications work in progress.
    return []
