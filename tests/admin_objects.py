"""One object of every admin-registered model, for smoke and tenancy tests.

A test asserts that every registered ModelAdmin has a builder here, so a new
admin cannot be added without being covered by both.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import Group
from django.utils import timezone
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
from economics.models import CustomerEconomics, EconomicsPolicy, EconomicsSnapshot
from economics.services import economics_policy_update
from ingestion.models import (
    DailyUsage,
    EventConflict,
    PriceOverride,
    RepricingRun,
    UnreviewedCustomer,
    UnreviewedFeature,
    UsageEvent,
)
from ingestion.services.ingest import usage_events_ingest
from ingestion.services.repricing import usage_reprice
from tests.accounts.factories import (
    CustomerFactory,
    CustomerPlanFactory,
    FeatureFactory,
    MembershipFactory,
    PlanFactory,
    ProviderKeyFactory,
    service_key,
)
from tests.economics.builders import Row, feature_item, snapshot_create
from tests.findings.objects import build_findings_objects
from tests.ingestion.providers.objects import build_provider_objects
from tests.ingestion.stripe.objects import build_stripe_objects


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
    ledger = build_ledger(organization, marker, customer=customer, feature=feature)
    return {
        **ledger,
        **build_economics(organization, customer=customer, plan=plan, feature=feature),
        **build_provider_objects(organization, marker),
        **build_stripe_objects(organization, marker, customer=customer, plan=plan),
        **build_findings_objects(
            organization,
            marker,
            customer=customer,
            plan=plan,
            feature=feature,
            user=membership.user,
        ),
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


def build_ledger(organization, marker, *, customer, feature) -> dict[type, object]:
    """A usage event (with its rollup), a conflict, a price override and a repricing run."""
    raw = {
        "event_id": f"{marker}-event", "timestamp": timezone.now().isoformat(),
        "customer_id": customer.external_id, "feature": feature.key, "provider": "openai",
        "model": "gpt-4o", "input_tokens": 100, "output_tokens": 10,
    }  # fmt: skip
    unknown = {**raw, "event_id": f"{marker}-event-2", "customer_id": f"{marker}-new-customer",
               "feature": f"{marker}-new-feature"}  # fmt: skip
    usage_events_ingest(
        organization=organization, raw_events=[raw, {**raw, "output_tokens": 11}, unknown]
    )
    override = PriceOverride.objects.create(
        organization=organization, provider="openai", model_pattern=f"{marker}-model*",
        effective_from=datetime(2026, 1, 1, tzinfo=UTC), discount_percent=Decimal("10"),
        note=f"{marker} override",
    )  # fmt: skip
    run = usage_reprice(
        organization=organization, start=timezone.now() - timedelta(days=1),
        end=timezone.now() + timedelta(minutes=1), reason=f"{marker} run",
    )  # fmt: skip
    return {
        UsageEvent: UsageEvent.objects.get(event_id=raw["event_id"], organization=organization),
        DailyUsage: DailyUsage.objects.get(organization=organization, customer=customer),
        UnreviewedCustomer: UnreviewedCustomer.objects.get(
            organization=organization, external_id=unknown["customer_id"]
        ),
        UnreviewedFeature: UnreviewedFeature.objects.get(
            organization=organization, key=unknown["feature"]
        ),
        EventConflict: EventConflict.objects.get(organization=organization),
        PriceOverride: override,
        RepricingRun: run,
    }


def build_economics(organization, *, customer, plan, feature) -> dict[type, object]:
    """The policy (with one recorded change) and a month's snapshot with one customer row."""
    policy = economics_policy_update(
        organization=organization, user=None, monthly_overhead=Decimal("100.00")
    )
    row = Row(customer, plan, ai_cost="12.50", revenue="49.00",
              feature_costs=[{"feature_id": feature.pk, "feature": feature.key,
                              "name": feature.name, "cost": "12.50"}])  # fmt: skip
    snapshot = snapshot_create(
        organization, rows=[row], features=[feature_item(feature, None, "12.50")]
    )
    return {
        EconomicsPolicy: policy,
        EconomicsSnapshot: snapshot,
        CustomerEconomics: snapshot.customers.get(),
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
