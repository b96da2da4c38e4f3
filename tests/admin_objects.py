"""One object of every admin-registered model, for smoke and tenancy tests.

A test asserts that every registered ModelAdmin has a builder here, so a new
admin cannot be added without being covered by both.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib.auth.models import Group
from django_q.models import Failure, OrmQ, Schedule, Success, Task

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
from tests.accounts.factories import (
    CustomerFactory,
    CustomerPlanFactory,
    FeatureFactory,
    MembershipFactory,
    PlanFactory,
    ProviderKeyFactory,
    service_key,
)


def _task(success: bool):
    return Task.objects.create(
        id=f"task-{success}-{Task.objects.count()}", name=f"marker task {success}",
        func="math.floor", started=datetime(2026, 1, 1, tzinfo=UTC),
        stopped=datetime(2026, 1, 1, tzinfo=UTC), success=success,
    )  # fmt: skip


def build_catalog(organization: Organization, marker: str) -> dict[type, object]:
    """Create one row of every organization-owned model; names carry ``marker``."""
    plan = PlanFactory(organization=organization, code=f"{marker}-plan", name=f"{marker} plan")
    customer = CustomerFactory(
        organization=organization, external_id=f"{marker}-cust", name=f"{marker} customer"
    )
    feature = FeatureFactory(
        organization=organization, key=f"{marker}-feature", name=f"{marker} feature"
    )
    membership = MembershipFactory(
        organization=organization, role=Role.OPS, user__username=f"{marker}-user",
        user__email=f"{marker}@example.com",
    )  # fmt: skip
    key, _ = service_key(organization, name=f"{marker} key")
    return {
        Organization: organization,
        Plan: plan,
        Customer: customer,
        CustomerPlan: CustomerPlanFactory(customer=customer, plan=plan),
        Feature: feature,
        ProviderKey: ProviderKeyFactory(
            organization=organization,
            key_id=f"{marker}-key",
            label=f"{marker} key label",
            feature=feature,
        ),
        Membership: membership,
        User: membership.user,
        ServiceAPIKey: key,
    }


def build_platform_objects(marker: str) -> dict[type, object]:
    """Rows of platform-wide models (not owned by an organization)."""
    return {
        Group: Group.objects.create(name=f"{marker} group"),
        Schedule: Schedule.objects.create(name=f"{marker} schedule", func="math.floor"),
        Success: _task(True),
        Failure: _task(False),
        OrmQ: OrmQ.objects.create(key=f"{marker}", payload="x", lock=None),
    }
