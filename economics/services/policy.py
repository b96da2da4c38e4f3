"""Writes of the economics policy: validated by the calculator, every change recorded."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, User
from economics.calculations import Policy
from economics.formatting import decimal_text
from economics.models import EconomicsPolicy, EconomicsPolicyChange, EconomicsSnapshot

# Every field finance sets, in the order the history lists them.
POLICY_FIELDS: Final = (
    "watch_threshold",
    "at_risk_threshold",
    "margin_negative_threshold",
    "underwater_threshold",
    "break_even_band",
    "tail_ratio",
    "overhead_rule",
    "monthly_overhead",
    "use_reconciled_cost",
)
# The calculator's name of a model field, where they differ.
_CALCULATOR_NAMES: Final = {"monthly_overhead": "overhead"}


def economics_policy_validate(*, values: Mapping[str, Any]) -> None:
    """Raise ``ValidationError`` unless ``values`` (every policy field) make a calculator
    ``Policy``; each error names the field it belongs to (thresholds ascend strictly,
    nothing negative, overhead in whole cents)."""
    kwargs = {_CALCULATOR_NAMES.get(name, name): values[name] for name in POLICY_FIELDS}
    kwargs.pop("use_reconciled_cost")
    try:
        Policy(**kwargs)
    except (TypeError, ValueError) as error:
        raise ValidationError({_field_of(error, values): str(error)}) from error


def _field_of(error: Exception, values: Mapping[str, Any]) -> str:
    message = str(error)
    if message.startswith("band thresholds"):
        # The first threshold that breaks the order is the one to correct.
        if not values["watch_threshold"] < values["at_risk_threshold"]:
            return "at_risk_threshold"
        return "margin_negative_threshold"
    for name in POLICY_FIELDS:
        if message.startswith(_CALCULATOR_NAMES.get(name, name) + " "):
            return name
    return "__all__"


@transaction.atomic
def economics_policy_update(
    *, organization: Organization, user: User | None, **fields: Any
) -> EconomicsPolicy:
    """Set the organization's policy fields (ratios are fractions of 1, ``monthly_overhead``
    USD per month), creating the policy with the defaults first if there is none.

    When a value changes, records an ``EconomicsPolicyChange`` (``{field: [old, new]}`` as
    strings) and marks the organization's snapshots stale: they were computed with the old
    policy. With no fields, or unchanged values, nothing but the creation happens.
    Raises ``ValidationError`` (keyed by field) on invalid values.
    """
    unknown = sorted(set(fields) - set(POLICY_FIELDS))
    if unknown:
        raise TypeError(f"not policy fields: {', '.join(unknown)}")
    EconomicsPolicy.objects.get_or_create(organization=organization)
    policy = EconomicsPolicy.objects.select_for_update(no_key=True).get(organization=organization)
    before = {name: getattr(policy, name) for name in POLICY_FIELDS}
    for name, value in fields.items():
        setattr(policy, name, value)
    # Field checks first (types, places, minimum), which also convert strings to Decimal.
    policy.clean_fields(exclude=["organization", "updated_by"])
    after = {name: getattr(policy, name) for name in POLICY_FIELDS}
    economics_policy_validate(values=after)

    changed = [name for name in POLICY_FIELDS if before[name] != after[name]]
    if not changed:
        return policy
    policy.updated_by = user
    policy.save(update_fields=[*changed, "updated_by", "updated_at"])
    EconomicsPolicyChange.objects.create(
        organization=organization,
        policy=policy,
        changed_by=user,
        changes={
            name: [policy_value_text(before[name]), policy_value_text(after[name])]
            for name in changed
        },
    )
    EconomicsSnapshot.objects.filter(organization=organization, stale_since__isnull=True).update(
        stale_since=timezone.now()
    )
    return policy


def policy_value_text(value: Any) -> str:
    """A policy value as the history stores it: decimals exact with at least two places
    ("0.30", "0.3125", "1500.00"), ``None`` as "" and the rest as ``str``."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return decimal_text(value)
    return str(value)
