"""economics_policy_update: validated by the calculator, each change recorded once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Organization
from economics.models import EconomicsPolicy, EconomicsPolicyChange, EconomicsSnapshot
from economics.services import economics_policy_update
from tests.accounts.factories import UserFactory
from tests.economics.builders import snapshot_create

pytestmark = pytest.mark.django_db


def test_without_fields_it_creates_the_default_policy_and_records_nothing(org):
    policy = economics_policy_update(organization=org, user=None)

    assert policy.pk is not None
    assert (policy.watch_threshold, policy.at_risk_threshold) == (Decimal("0.30"), Decimal("0.40"))
    assert economics_policy_update(organization=org, user=None).pk == policy.pk
    assert not EconomicsPolicyChange.objects.exists()


def test_a_change_is_recorded_as_exact_strings_with_who_made_it(org):
    finance = UserFactory(username="fiona")

    policy = economics_policy_update(
        organization=org, user=finance, watch_threshold=Decimal("0.3125"),
        tail_ratio=Decimal("0.5"), use_reconciled_cost=False, break_even_band=Decimal("0.05"),
    )  # fmt: skip

    change = EconomicsPolicyChange.objects.get()
    assert change.changes == {
        "watch_threshold": ["0.30", "0.3125"],
        "tail_ratio": ["", "0.50"],
        "use_reconciled_cost": ["True", "False"],
    }  # the break-even band was sent unchanged, so it is not listed
    assert (change.changed_by, change.organization, change.policy) == (finance, org, policy)
    assert policy.updated_by == finance


def test_strings_are_accepted_and_an_equal_value_is_no_change(org):
    economics_policy_update(organization=org, user=None, monthly_overhead="1500")
    economics_policy_update(organization=org, user=None, monthly_overhead="1500.00")

    assert EconomicsPolicyChange.objects.get().changes == {"monthly_overhead": ["0.00", "1500.00"]}
    assert EconomicsPolicy.objects.get(organization=org).monthly_overhead == Decimal("1500.00")


def test_a_change_marks_only_this_organizations_snapshots_stale(org):
    rival = Organization.objects.create(name="Rival", slug="rival")
    mine = snapshot_create(org)
    theirs = snapshot_create(rival)
    already = datetime(2026, 5, 2, tzinfo=UTC)
    EconomicsSnapshot.objects.filter(pk=mine.pk).update(stale_since=None)

    economics_policy_update(organization=org, user=None)  # nothing changes: nothing stale
    assert EconomicsSnapshot.objects.get(pk=mine.pk).stale_since is None
    EconomicsSnapshot.objects.filter(pk=theirs.pk).update(stale_since=already)

    economics_policy_update(organization=org, user=None, underwater_threshold=Decimal("0.5"))

    assert EconomicsSnapshot.objects.get(pk=mine.pk).stale_since is not None
    assert EconomicsSnapshot.objects.get(pk=theirs.pk).stale_since == already


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"watch_threshold": Decimal("0.45")}, "at_risk_threshold", "must ascend strictly"),
        ({"margin_negative_threshold": Decimal("0.40")}, "margin_negative_threshold",
         "must ascend strictly"),
        ({"break_even_band": Decimal("-0.01")}, "break_even_band", "greater than or equal to 0"),
        ({"monthly_overhead": Decimal("10.005")}, "monthly_overhead", "2 decimal places"),
        ({"overhead_rule": "seats"}, "overhead_rule", "not a valid choice"),
    ],
)  # fmt: skip
def test_invalid_values_are_refused_by_field_and_nothing_is_saved(org, fields, field, message):
    economics_policy_update(organization=org, user=None)

    with pytest.raises(ValidationError) as raised:
        economics_policy_update(organization=org, user=None, **fields)

    assert message in " ".join(raised.value.message_dict[field])
    policy = EconomicsPolicy.objects.get(organization=org)
    assert policy.watch_threshold == Decimal("0.30")
    assert not EconomicsPolicyChange.objects.exists()


def test_unknown_fields_are_a_programming_error(org):
    with pytest.raises(TypeError, match="not policy fields: seats"):
        economics_policy_update(organization=org, user=None, seats=3)
