"""The review queue: confirm, merge and re-resolve what usage registered on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Customer, Feature, ProviderKey
from ingestion.models import UsageEvent
from ingestion.services.catalog import catalog_confirm, customer_merge, feature_merge
from ingestion.services.ingest import usage_events_ingest
from tests.accounts.factories import (
    CustomerFactory,
    CustomerPlanFactory,
    FeatureFactory,
    PlanFactory,
)
from tests.ingestion.helpers import event, ledger_aggregate, rollup_rows

pytestmark = pytest.mark.django_db


def test_merging_a_registered_customer_moves_its_usage_with_the_target_plan(org):
    target = CustomerFactory(organization=org, external_id="acme")
    pro = PlanFactory(organization=org, code="pro")
    CustomerPlanFactory(customer=target, plan=pro, valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    usage_events_ingest(
        organization=org,
        raw_events=[event(customer_id="ACME Inc"), event(customer_id="ACME Inc"), event()],
    )
    source = Customer.objects.get(organization=org, external_id="ACME Inc")
    assert source.needs_review

    moved = customer_merge(source=source, target=target)

    assert moved == 2
    assert not Customer.objects.filter(pk=source.pk).exists()
    rows = UsageEvent.objects.filter(organization=org, customer=target)
    assert rows.count() == 2
    assert {row.plan_id for row in rows} == {pro.pk}
    assert rollup_rows(org.pk) == ledger_aggregate(org.pk)


def test_customers_with_a_plan_history_are_not_merged(org):
    source = CustomerFactory(organization=org)
    CustomerPlanFactory(customer=source)

    with pytest.raises(ValidationError, match="has a plan history"):
        customer_merge(source=source, target=CustomerFactory(organization=org))
    with pytest.raises(ValidationError, match="into itself"):
        customer_merge(source=source, target=source)


def test_merging_a_feature_moves_usage_and_key_mappings(org):
    target = FeatureFactory(organization=org, key="semantic-search")
    usage_events_ingest(organization=org, raw_events=[event(feature="search-v2")])
    source = Feature.objects.get(organization=org, key="search-v2")
    key = ProviderKey.objects.create(organization=org, provider="openai", key_id="k1",
                                     feature=source)  # fmt: skip

    assert feature_merge(source=source, target=target) == 1

    assert UsageEvent.objects.get().feature == target
    key.refresh_from_db()
    assert key.feature == target
    assert rollup_rows(org.pk) == ledger_aggregate(org.pk)


def test_confirming_a_customer_after_giving_it_a_plan_reattributes_its_usage(org):
    now = timezone.now()
    usage_events_ingest(organization=org, raw_events=[event(customer_id="new-co")], now=now)
    customer = Customer.objects.get(organization=org, external_id="new-co")
    assert UsageEvent.objects.get().plan is None
    starter = PlanFactory(organization=org, code="starter")
    CustomerPlanFactory(customer=customer, plan=starter, valid_from=now - timedelta(days=30))

    assert catalog_confirm(organization=org, customer_ids=[customer.pk]) == 1

    customer.refresh_from_db()
    assert customer.needs_review is False
    assert UsageEvent.objects.get().plan == starter
    assert rollup_rows(org.pk) == ledger_aggregate(org.pk)
