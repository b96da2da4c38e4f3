"""Reads for organizations, staff access and the catalog."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from accounts.models import (
    Customer,
    CustomerPlan,
    Feature,
    Membership,
    Organization,
    Plan,
    ProviderKey,
    ServiceAPIKey,
    User,
)


def organization_list_for_user(*, user: User) -> QuerySet[Organization]:
    """Organizations the staff user may work in (superusers: all)."""
    if user.is_superuser:
        return Organization.objects.all()
    return Organization.objects.filter(memberships__user=user)


def active_organization_resolve(
    *, user: User, preferred_id: int | None
) -> tuple[Organization | None, Membership | None]:
    """The organization a staff request works in, and the user's membership there.

    The preferred organization (from the session) wins if the user may use it;
    otherwise the first membership by name. One query for members.
    """
    memberships = list(
        Membership.objects.filter(user=user)
        .select_related("organization")
        .order_by("organization__name")
    )
    for membership in memberships:
        if membership.organization_id == preferred_id:
            return membership.organization, membership
    if user.is_superuser and preferred_id is not None:
        organization = Organization.objects.filter(pk=preferred_id).first()
        if organization is not None:
            return organization, None
    if memberships:
        return memberships[0].organization, memberships[0]
    if user.is_superuser:
        return Organization.objects.order_by("name").first(), None
    return None, None


def customer_plan_at(*, customer: Customer, at: datetime) -> Plan | None:
    """The plan in force for the customer at ``at`` (periods are half-open)."""
    period = (
        CustomerPlan.objects.filter(customer=customer, valid_from__lte=at)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))
        .select_related("plan")
        .first()
    )
    return period.plan if period else None


def customer_list(*, organization: Organization) -> QuerySet[Customer]:
    return Customer.objects.filter(organization=organization).order_by("name", "pk")


def customer_annotate_current_plan(
    *, queryset: QuerySet[Customer], at: datetime | None = None
) -> QuerySet[Customer]:
    """Annotate ``current_plan_code`` and ``current_plan_name``: the plan in force at ``at``
    (default now), or None. One correlated subquery each, no extra queries per row."""
    at = at or timezone.now()
    in_force = (
        CustomerPlan.objects.filter(customer=OuterRef("pk"), valid_from__lte=at)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))
        .order_by("-valid_from")
    )
    return queryset.annotate(
        current_plan_code=Subquery(in_force.values("plan__code")[:1]),
        current_plan_name=Subquery(in_force.values("plan__name")[:1]),
    )


def plan_list(*, organization: Organization) -> QuerySet[Plan]:
    return Plan.objects.filter(organization=organization).order_by("price", "name", "pk")


def feature_list(*, organization: Organization) -> QuerySet[Feature]:
    return Feature.objects.filter(organization=organization).order_by("name", "pk")


def provider_key_list(*, organization: Organization) -> QuerySet[ProviderKey]:
    return (
        ProviderKey.objects.filter(organization=organization)
        .select_related("feature")
        .order_by("provider", "label", "pk")
    )


@dataclass(frozen=True)
class CatalogSummary:
    customers: int
    customers_internal: int
    customers_to_review: int
    plans: int
    features_active: int
    features_retired: int
    features_to_review: int
    provider_keys: int
    provider_keys_unmapped: int
    service_keys_active: int
    staff: int


def catalog_summary(*, organization: Organization) -> CatalogSummary:
    """Counts of the organization's catalog for the ops start page (one query per table)."""
    customers = Customer.objects.filter(organization=organization).aggregate(
        total=Count("pk"),
        internal=Count("pk", filter=Q(is_internal=True)),
        review=Count("pk", filter=Q(needs_review=True)),
    )
    features = Feature.objects.filter(organization=organization).aggregate(
        active=Count("pk", filter=Q(status=Feature.Status.ACTIVE)),
        retired=Count("pk", filter=Q(status=Feature.Status.RETIRED)),
        review=Count("pk", filter=Q(needs_review=True)),
    )
    keys = ProviderKey.objects.filter(organization=organization).aggregate(
        total=Count("pk"), unmapped=Count("pk", filter=Q(feature__isnull=True))
    )
    return CatalogSummary(
        customers=customers["total"],
        customers_internal=customers["internal"],
        customers_to_review=customers["review"],
        plans=Plan.objects.filter(organization=organization).count(),
        features_active=features["active"],
        features_retired=features["retired"],
        features_to_review=features["review"],
        provider_keys=keys["total"],
        provider_keys_unmapped=keys["unmapped"],
        service_keys_active=ServiceAPIKey.objects.filter(
            organization=organization, revoked=False
        ).count(),
        staff=Membership.objects.filter(organization=organization).count(),
    )


def plan_customer_counts(*, organization: Organization, at: datetime) -> QuerySet[Plan]:
    """Plans annotated with ``customer_count``: customers on the plan at ``at``."""
    in_force = Q(customer_periods__valid_from__lte=at) & (
        Q(customer_periods__valid_to__isnull=True) | Q(customer_periods__valid_to__gt=at)
    )
    return plan_list(organization=organization).annotate(
        customer_count=Count("customer_periods", filter=in_force)
    )
