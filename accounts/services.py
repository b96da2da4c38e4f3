"""Writes for organizations, staff, service keys and the catalog.

Every service validates (``full_clean``) before saving and takes the
organization explicitly: callers pass the organization resolved from the
credential, never one taken from request data.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import (
    Customer,
    CustomerPlan,
    Feature,
    Membership,
    Organization,
    Plan,
    ProviderKey,
    Role,
    ServiceAPIKey,
    User,
)
from metron.services import model_update

SERVICE_KEY_UNKNOWN_SCOPE = "Unknown scope {scope!r}; use ingest, read or write."
SERVICE_KEY_NO_SCOPE = "A service key needs at least one scope."
CUSTOMER_PLAN_BACKDATED = (
    "The customer already has a plan period starting at or after {at}; "
    "edit the plan history instead."
)

CUSTOMER_FIELDS = (
    "name", "stripe_customer_id", "segment", "region", "metadata", "started_on",
    "is_internal", "status", "needs_review",
)  # fmt: skip
PLAN_FIELDS = (
    "name", "price", "currency", "interval", "is_free", "is_trial", "stripe_price_ids",
    "is_active",
)  # fmt: skip
FEATURE_FIELDS = ("name", "team", "description", "status", "launched_on", "needs_review")
PROVIDER_KEY_FIELDS = ("label", "feature", "team", "environment", "status", "last_seen_at")


def _create(model, **fields):
    instance = model(**fields)
    instance.full_clean()
    instance.save()
    return instance


# --- organizations and staff -------------------------------------------------


@transaction.atomic
def organization_create(
    *, slug: str, name: str, reporting_currency: str = "USD", timezone: str = "UTC"
) -> Organization:
    """Create an organization (a tenant)."""
    return _create(
        Organization,
        slug=slug,
        name=name,
        reporting_currency=reporting_currency,
        timezone=timezone,
    )


@transaction.atomic
def membership_set(*, user: User, organization: Organization, role: str) -> Membership:
    """Give ``user`` the ``role`` in ``organization`` (creates or changes the membership)."""
    Role(role)  # refuse unknown roles early, with the enum's own error
    membership, _ = Membership.objects.update_or_create(
        user=user, organization=organization, defaults={"role": role}
    )
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return membership


@transaction.atomic
def staff_user_create(
    *, username: str, password: str, organization: Organization, role: str, email: str = ""
) -> User:
    """Create a staff user who works in ``organization`` with ``role``."""
    user = User(username=username, email=email, is_staff=True)
    user.set_password(password)
    user.full_clean()
    user.save()
    membership_set(user=user, organization=organization, role=role)
    return user


# --- service API keys ---------------------------------------------------------


@transaction.atomic
def service_key_create(
    *,
    organization: Organization,
    name: str,
    scopes: Iterable[str],
    expiry_date: datetime | None = None,
    created_by: User | None = None,
) -> tuple[ServiceAPIKey, str]:
    """Create a service key; returns it with the plaintext key, which is never stored."""
    key = ServiceAPIKey(
        organization=organization,
        name=name,
        scopes=list(scopes),
        expiry_date=expiry_date,
        created_by=created_by,
    )
    return key, service_key_issue(key=key)


@transaction.atomic
def service_key_issue(*, key: ServiceAPIKey) -> str:
    """Validate and save a new, unsaved service key; returns its plaintext (shown once)."""
    key.scopes = list(dict.fromkeys(key.scopes))
    if not key.scopes:
        raise ValidationError({"scopes": SERVICE_KEY_NO_SCOPE})
    for scope in key.scopes:
        if scope not in ServiceAPIKey.Scope.values:
            raise ValidationError({"scopes": SERVICE_KEY_UNKNOWN_SCOPE.format(scope=scope)})
    plaintext = ServiceAPIKey.objects.assign_key(key)
    key.full_clean(exclude=["id", "prefix", "hashed_key"])
    key.save()
    return plaintext


def service_key_revoke(*, key: ServiceAPIKey) -> ServiceAPIKey:
    """Revoke a service key for good; its next request is refused."""
    if not key.revoked:
        key.revoked = True
        key.save(update_fields=["revoked"])
    return key


# --- catalog ------------------------------------------------------------------


@transaction.atomic
def customer_create(
    *,
    organization: Organization,
    external_id: str,
    plan: Plan | None = None,
    plan_from: datetime | None = None,
    **fields: Any,
) -> Customer:
    """Create a customer; with ``plan``, open its plan history at ``plan_from``."""
    unknown = set(fields) - set(CUSTOMER_FIELDS)
    if unknown:
        raise TypeError(f"Unknown customer fields: {sorted(unknown)}")
    fields.setdefault("name", external_id)
    customer = _create(Customer, organization=organization, external_id=external_id, **fields)
    if plan is not None:
        customer_plan_assign(customer=customer, plan=plan, valid_from=plan_from)
    return customer


@transaction.atomic
def customer_update(
    *,
    customer: Customer,
    plan: Plan | None = None,
    plan_from: datetime | None = None,
    **data: Any,
) -> Customer:
    """Update a customer's fields; a new ``plan`` starts a new plan period."""
    customer, _ = model_update(instance=customer, fields=CUSTOMER_FIELDS, data=data)
    if plan is not None:
        customer_plan_assign(customer=customer, plan=plan, valid_from=plan_from)
    return customer


@transaction.atomic
def customer_plan_assign(
    *, customer: Customer, plan: Plan, valid_from: datetime | None = None
) -> CustomerPlan:
    """Put ``customer`` on ``plan`` from ``valid_from`` (default now), closing the open period.

    The customer row is locked so two concurrent changes cannot both open a
    period. Assigning the plan already in force is a no-op.
    """
    valid_from = valid_from or timezone.now()
    Customer.objects.select_for_update(no_key=True).filter(pk=customer.pk).first()
    periods = CustomerPlan.objects.filter(customer=customer)
    current = periods.filter(valid_to__isnull=True).first()
    if current is not None and current.plan_id == plan.pk and current.valid_from <= valid_from:
        return current
    if periods.filter(valid_from__gte=valid_from).exists():
        raise ValidationError(CUSTOMER_PLAN_BACKDATED.format(at=valid_from.isoformat()))
    if current is not None:
        current.valid_to = valid_from
        current.save(update_fields=["valid_to", "updated_at"])
    return _create(
        CustomerPlan,
        organization=customer.organization,
        customer=customer,
        plan=plan,
        valid_from=valid_from,
    )


@transaction.atomic
def plan_create(*, organization: Organization, code: str, **fields: Any) -> Plan:
    """Create a plan."""
    return _create(Plan, organization=organization, code=code, **fields)


@transaction.atomic
def plan_update(*, plan: Plan, **data: Any) -> Plan:
    """Update a plan's fields (its code is its identity and does not change)."""
    return model_update(instance=plan, fields=PLAN_FIELDS, data=data)[0]


@transaction.atomic
def feature_create(*, organization: Organization, key: str, **fields: Any) -> Feature:
    """Create a feature; ``key`` is the tag services send with usage."""
    fields.setdefault("name", key)
    return _create(Feature, organization=organization, key=key, **fields)


@transaction.atomic
def feature_update(*, feature: Feature, **data: Any) -> Feature:
    """Update a feature's fields (its key does not change)."""
    return model_update(instance=feature, fields=FEATURE_FIELDS, data=data)[0]


@transaction.atomic
def provider_key_create(
    *, organization: Organization, provider: str, key_id: str, **fields: Any
) -> ProviderKey:
    """Register a provider API key by its id and map it to a feature/team."""
    return _create(
        ProviderKey, organization=organization, provider=provider, key_id=key_id, **fields
    )


@transaction.atomic
def provider_key_update(*, provider_key: ProviderKey, **data: Any) -> ProviderKey:
    """Update a provider key's mapping (provider and key id do not change)."""
    return model_update(instance=provider_key, fields=PROVIDER_KEY_FIELDS, data=data)[0]


# --- review queue -------------------------------------------------------------


def catalog_mark_reviewed(
    *, model: type[Customer] | type[Feature], organization: Organization, ids: Iterable[int]
) -> int:
    """Confirm auto-registered customers or features; returns how many changed."""
    return model.objects.filter(
        organization=organization, pk__in=list(ids), needs_review=True
    ).update(needs_review=False, updated_at=timezone.now())


def provider_key_revoke_many(*, organization: Organization, ids: Iterable[int]) -> int:
    """Mark provider keys revoked at the provider; returns how many changed."""
    return ProviderKey.objects.filter(
        organization=organization, pk__in=list(ids), status=ProviderKey.Status.ACTIVE
    ).update(status=ProviderKey.Status.REVOKED, updated_at=timezone.now())


@transaction.atomic
def customer_plan_end(*, customer: Customer, valid_to: datetime) -> CustomerPlan | None:
    """Close the customer's open plan period at ``valid_to`` (churn); None if none is open.

    The customer row is locked, as in ``customer_plan_assign``.
    """
    Customer.objects.select_for_update(no_key=True).filter(pk=customer.pk).first()
    current = CustomerPlan.objects.filter(customer=customer, valid_to__isnull=True).first()
    if current is None:
        return None
    current.valid_to = valid_to
    current.full_clean()
    current.save(update_fields=["valid_to", "updated_at"])
    return current


@transaction.atomic
def customer_plan_history_replace(
    *,
    customer: Customer,
    periods: Iterable[tuple[Plan, datetime]],
    ended_at: datetime | None = None,
) -> list[CustomerPlan]:
    """Replace the customer's whole plan history with back-to-back periods.

    Each ``(plan, valid_from)`` runs until the next one starts; the last stays
    open unless ``ended_at`` closes it. For corrections and demo data.
    """
    Customer.objects.select_for_update(no_key=True).filter(pk=customer.pk).first()
    CustomerPlan.objects.filter(customer=customer).delete()
    for plan, valid_from in periods:
        customer_plan_assign(customer=customer, plan=plan, valid_from=valid_from)
    if ended_at is not None:
        customer_plan_end(customer=customer, valid_to=ended_at)
    return list(CustomerPlan.objects.filter(customer=customer).order_by("valid_from"))


ORGANIZATION_FIELDS = ("name", "reporting_currency", "timezone", "usage_accept_days")


@transaction.atomic
def organization_update(*, organization: Organization, **data: Any) -> Organization:
    """Update an organization's settings, e.g. ``usage_accept_days`` (its slug does not change)."""
    return model_update(instance=organization, fields=ORGANIZATION_FIELDS, data=data)[0]
