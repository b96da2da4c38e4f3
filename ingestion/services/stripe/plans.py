"""A matched customer's plan history, kept from its mirrored Stripe subscriptions.

Evidence of "customer on plan P from time t": each subscription item's current
period start (``current_period_start``, on the item since API 2025-03-31) and
the period start of each non-negative invoice line of the subscription, where
the price maps to a plan (``Plan.stripe_price_ids``). A subscription runs from
its ``start_date`` until ``ended_at`` (canceled) or stays open while live;
``incomplete`` subscriptions never started. Where subscriptions overlap, the
one whose evidence started last wins.

The history is written through the accounts services and only when it differs
from what is stored, so syncing twice changes nothing. Customers without any
mapped subscription keep the history staff entered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction

from accounts.models import Customer, CustomerPlan, Plan
from accounts.services import customer_plan_assign, customer_plan_end
from ingestion.models import StripeInvoiceLine, StripeSubscription
from ingestion.services.catalog import usage_plans_reresolve

NEVER_STARTED = {"incomplete", "incomplete_expired"}
ENDED = {"canceled"}
NOT_BILLED = {"draft", "void"}


@dataclass(frozen=True)
class Segment:
    plan_id: int
    start: datetime
    end: datetime | None  # None: open


@dataclass
class SubscriptionEvidence:
    start: datetime | None
    end: datetime | None  # None while the subscription is live
    points: list[tuple[datetime, int]] = field(default_factory=list)  # (from, plan id)


def _subscription_segments(evidence: SubscriptionEvidence) -> list[Segment]:
    points = sorted(set(evidence.points))
    if not points:
        return []
    # One plan per instant: the lowest plan id wins ties, deterministically.
    by_time: dict[datetime, int] = {}
    for at, plan_id in points:
        by_time.setdefault(at, plan_id)
    times = sorted(by_time)
    start = min(evidence.start, times[0]) if evidence.start else times[0]
    segments = []
    for index, at in enumerate(times):
        seg_start = start if index == 0 else at
        seg_end = times[index + 1] if index + 1 < len(times) else evidence.end
        if evidence.end is not None:
            if seg_start >= evidence.end:
                break
            seg_end = min(seg_end, evidence.end) if seg_end else evidence.end
        segments.append(Segment(by_time[at], seg_start, seg_end))
    return segments


def plan_segments(subscriptions: list[SubscriptionEvidence]) -> list[Segment]:
    """The customer's plan timeline: back-to-back or gapped, later evidence winning overlaps.

    Pure: a sweep over the boundaries of every subscription's segments.
    """
    candidates = [seg for sub in subscriptions for seg in _subscription_segments(sub)]
    if not candidates:
        return []
    boundaries = sorted(
        {seg.start for seg in candidates} | {seg.end for seg in candidates if seg.end}
    )
    timeline: list[Segment] = []
    for index, at in enumerate(boundaries):
        nxt = boundaries[index + 1] if index + 1 < len(boundaries) else None
        covering = [s for s in candidates if s.start <= at and (s.end is None or s.end > at)]
        if not covering:
            continue
        winner = max(covering, key=lambda s: (s.start, -s.plan_id))
        end = nxt if nxt is not None else None
        if end is None and winner.end is not None:
            end = winner.end
        if timeline and timeline[-1].plan_id == winner.plan_id and timeline[-1].end == at:
            timeline[-1] = Segment(winner.plan_id, timeline[-1].start, end)
        else:
            timeline.append(Segment(winner.plan_id, at, end))
    return timeline


def customer_plan_evidence(*, customer: Customer) -> list[SubscriptionEvidence]:
    """What the mirror says about the customer's subscriptions (two queries)."""
    subscriptions = list(
        StripeSubscription.objects.filter(customer=customer)
        .exclude(status__in=NEVER_STARTED)
        .prefetch_related("items")
    )
    if not subscriptions:
        return []
    plans_by_price: dict[str, int] = {}
    for plan_id, price_ids in Plan.objects.filter(
        organization_id=customer.organization_id
    ).values_list("pk", "stripe_price_ids"):
        for price_id in price_ids:
            plans_by_price.setdefault(price_id, plan_id)
    lines = (
        StripeInvoiceLine.objects.filter(
            organization_id=customer.organization_id,
            subscription_stripe_id__in=[s.stripe_id for s in subscriptions],
            amount_minor__gte=0,
            period_start__isnull=False,
        )
        .exclude(invoice__status__in=NOT_BILLED)
        .values_list("subscription_stripe_id", "period_start", "price_stripe_id")
    )
    by_subscription: dict[str, list[tuple[datetime, int]]] = {}
    for subscription_id, period_start, price_id in lines:
        if price_id in plans_by_price:
            by_subscription.setdefault(subscription_id, []).append(
                (period_start, plans_by_price[price_id])
            )
    evidence = []
    for subscription in subscriptions:
        points = list(by_subscription.get(subscription.stripe_id, []))
        for item in subscription.items.all():
            plan_id = plans_by_price.get(item.price_stripe_id)
            at = item.current_period_start or subscription.start_date
            if plan_id is not None and at is not None:
                points.append((at, plan_id))
        ended = subscription.status in ENDED
        end = (subscription.ended_at or subscription.canceled_at) if ended else None
        evidence.append(SubscriptionEvidence(subscription.start_date, end, points))
    return evidence


@transaction.atomic
def customer_plan_history_sync(*, customer: Customer) -> bool:
    """Make the customer's plan history match its Stripe subscriptions; True if it changed."""
    segments = plan_segments(customer_plan_evidence(customer=customer))
    if not segments:
        return False
    Customer.objects.select_for_update(no_key=True).filter(pk=customer.pk).first()
    stored = [
        Segment(p.plan_id, p.valid_from, p.valid_to)
        for p in CustomerPlan.objects.filter(customer=customer).order_by("valid_from")
    ]
    if stored == segments:
        return False
    plans = Plan.objects.in_bulk([s.plan_id for s in segments])
    CustomerPlan.objects.filter(customer=customer).delete()
    for segment in segments:
        customer_plan_assign(
            customer=customer, plan=plans[segment.plan_id], valid_from=segment.start
        )
        if segment.end is not None:
            customer_plan_end(customer=customer, valid_to=segment.end)
    usage_plans_reresolve(organization=customer.organization, customer_ids=[customer.pk])
    return True


def customers_plan_history_sync(*, customer_ids: list[int]) -> int:
    """Sync the plan history of several customers; returns how many changed."""
    changed = 0
    for customer in Customer.objects.filter(pk__in=customer_ids).select_related("organization"):
        changed += customer_plan_history_sync(customer=customer)
    return changed
