"""The review queue of what usage registered on its own: confirm, merge, re-resolve.

These are the only services that re-attribute ledger rows. Each rewrites the
attribution columns of the affected events in one statement and rebuilds the
rollups of the days those events fall on, in the same transaction.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Customer, CustomerPlan, Feature, Organization, ProviderKey
from ingestion.models import UsageEvent
from ingestion.services.rollups import rollups_rebuild

MERGE_SAME = "A {kind} cannot be merged into itself."
MERGE_OTHER_ORG = "Both {kind}s must belong to the same organization."
MERGE_HAS_PLANS = "{name} has a plan history; only customers registered from usage can be merged."

EVENTS = UsageEvent._meta.db_table
PERIODS = CustomerPlan._meta.db_table


def plan_at_event(customer: str) -> str:
    """SQL: the plan in force for ``customer`` (an SQL expression) at the event's time.

    In an UPDATE, ``e.customer_id`` is the row's old value, so a merge passes
    the target's id explicitly.
    """
    return f"""(
        SELECT cp.plan_id FROM {PERIODS} cp
        WHERE cp.customer_id = {customer} AND cp.valid_from <= e.timestamp
          AND (cp.valid_to IS NULL OR cp.valid_to > e.timestamp)
        ORDER BY cp.valid_from DESC LIMIT 1
    )"""


def _rebuild_days(organization: Organization, days: list[date]) -> None:
    if days:
        rollups_rebuild(
            organization_id=organization.pk, start=min(days), end=max(days) + timedelta(days=1)
        )


def _rewrite(
    organization: Organization, set_sql: str, where_sql: str, params: list
) -> tuple[int, list[date]]:
    """Rewrite attribution columns of matching events, then rebuild the rollups of their days.

    Returns how many events changed and the UTC days they fall on.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {EVENTS} AS e SET {set_sql} "
            f"WHERE {where_sql} AND e.organization_id = %s "
            "RETURNING (e.timestamp AT TIME ZONE 'UTC')::date",
            [*params, organization.pk],
        )
        touched = [row[0] for row in cursor.fetchall()]
    days = sorted(set(touched))
    _rebuild_days(organization, days)
    return len(touched), days


@transaction.atomic
def customer_merge(*, source: Customer, target: Customer) -> int:
    """Move the usage of an auto-registered customer onto ``target`` and delete it.

    Events take the target's plan as of their own time. Returns the number of
    events moved.
    """
    if source.pk == target.pk:
        raise ValidationError(MERGE_SAME.format(kind="customer"))
    if source.organization_id != target.organization_id:
        raise ValidationError(MERGE_OTHER_ORG.format(kind="customer"))
    if CustomerPlan.objects.filter(customer=source).exists():
        raise ValidationError(MERGE_HAS_PLANS.format(name=source))
    moved, _ = _rewrite(
        source.organization,
        f"customer_id = %s, plan_id = {plan_at_event('%s')}",
        "e.customer_id = %s",
        [target.pk, target.pk, source.pk],
    )
    source.delete()
    return moved


@transaction.atomic
def feature_merge(*, source: Feature, target: Feature) -> int:
    """Move the usage and key mappings of an auto-registered feature onto ``target``.

    Returns the number of events moved; the source feature is deleted.
    """
    if source.pk == target.pk:
        raise ValidationError(MERGE_SAME.format(kind="feature"))
    if source.organization_id != target.organization_id:
        raise ValidationError(MERGE_OTHER_ORG.format(kind="feature"))
    moved, _ = _rewrite(
        source.organization, "feature_id = %s", "e.feature_id = %s", [target.pk, source.pk]
    )
    ProviderKey.objects.filter(feature=source).update(feature=target, updated_at=timezone.now())
    source.delete()
    return moved


@transaction.atomic
def usage_plans_reresolve(*, organization: Organization, customer_ids: list[int]) -> int:
    """Recompute the plan of past events after a customer's plan history was edited.

    Returns the number of events whose plan changed.
    """
    changed, _ = _rewrite(
        organization,
        f"plan_id = {plan_at_event('e.customer_id')}",
        f"e.customer_id = ANY(%s) AND e.plan_id IS DISTINCT FROM {plan_at_event('e.customer_id')}",
        [list(customer_ids)],
    )
    return changed


@transaction.atomic
def catalog_confirm(
    *, organization: Organization, customer_ids: list[int] = (), feature_ids: list[int] = ()
) -> int:
    """Confirm auto-registered customers/features as they are; their past usage takes the
    customers' current plan history. Returns how many rows were confirmed."""
    confirmed = Customer.objects.filter(
        organization=organization, pk__in=customer_ids, needs_review=True
    ).update(needs_review=False, updated_at=timezone.now())
    confirmed += Feature.objects.filter(
        organization=organization, pk__in=feature_ids, needs_review=True
    ).update(needs_review=False, updated_at=timezone.now())
    if customer_ids:
        usage_plans_reresolve(organization=organization, customer_ids=list(customer_ids))
    return confirmed
