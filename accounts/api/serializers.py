"""Input (shape of writes) and output serializers of the accounts API.

Both serializers of a resource share one OpenAPI name: the input one becomes
``<Name>Request`` and ``Patched<Name>Request``, the output one ``<Name>``.

Input serializers only validate; the views pass ``validated_data`` to the
services. Related rows are named by their natural key and resolved inside the
caller's organization only.
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from accounts.models import Customer, Feature, Plan, ProviderKey
from metron.api.fields import MetadataField, OrganizationSlugRelatedField

PLAN_FROM_WITHOUT_PLAN = "Send plan_from together with plan."
TIMESTAMPS = ["created_at", "updated_at"]


# --- customers ------------------------------------------------------------------


@extend_schema_serializer(component_name="Customer")
class CustomerOutputSerializer(serializers.ModelSerializer):
    customer_id = serializers.CharField(
        source="external_id",
        read_only=True,
        help_text="The id the product uses; usage events carry it.",
    )
    plan = serializers.CharField(
        source="current_plan_code",
        read_only=True,
        allow_null=True,
        help_text="Code of the plan in force now (null without one).",
    )
    metadata = MetadataField(read_only=True)

    class Meta:
        model = Customer
        fields = [
            "id", "customer_id", "name", "stripe_customer_id", "segment", "region", "metadata",
            "started_on", "is_internal", "status", "needs_review", "plan", *TIMESTAMPS,
        ]  # fmt: skip
        read_only_fields = fields


@extend_schema_serializer(component_name="Customer")
class CustomerInputSerializer(serializers.ModelSerializer):
    customer_id = serializers.CharField(
        source="external_id",
        max_length=255,
        help_text="The id the product uses; usage events carry it. Cannot change later.",
    )
    metadata = MetadataField(required=False)
    plan = OrganizationSlugRelatedField(
        model=Plan,
        slug_field="code",
        required=False,
        help_text="Plan code. A different plan than the current one opens a new plan period.",
    )
    plan_from = serializers.DateTimeField(
        required=False,
        help_text="When the plan given in `plan` takes effect (default: now).",
    )

    class Meta:
        model = Customer
        fields = [
            "customer_id", "name", "stripe_customer_id", "segment", "region", "metadata",
            "started_on", "is_internal", "status", "needs_review", "plan", "plan_from",
        ]  # fmt: skip
        extra_kwargs = {"name": {"required": False}}

    def validate(self, attrs):
        if "plan_from" in attrs and "plan" not in attrs:
            raise serializers.ValidationError({"plan_from": [PLAN_FROM_WITHOUT_PLAN]})
        return attrs


# --- plans ----------------------------------------------------------------------


@extend_schema_serializer(component_name="Plan")
class PlanOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = [
            "id", "code", "name", "price", "currency", "interval", "is_free", "is_trial",
            "stripe_price_ids", "is_active", *TIMESTAMPS,
        ]  # fmt: skip
        read_only_fields = fields


@extend_schema_serializer(component_name="Plan")
class PlanInputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = [
            "code", "name", "price", "currency", "interval", "is_free", "is_trial",
            "stripe_price_ids", "is_active",
        ]  # fmt: skip
        extra_kwargs = {
            "code": {"help_text": "Stable identifier; cannot change later."},
            "price": {"min_value": Decimal("0")},
        }


# --- features -------------------------------------------------------------------


@extend_schema_serializer(component_name="Feature")
class FeatureOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Feature
        fields = [
            "id", "key", "name", "team", "description", "status", "launched_on",
            "needs_review", *TIMESTAMPS,
        ]  # fmt: skip
        read_only_fields = fields


@extend_schema_serializer(component_name="Feature")
class FeatureInputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Feature
        fields = ["key", "name", "team", "description", "status", "launched_on", "needs_review"]
        extra_kwargs = {
            "key": {"help_text": "The tag services send with usage; cannot change later."},
            "name": {"required": False},
        }


# --- provider keys --------------------------------------------------------------


@extend_schema_serializer(component_name="ProviderKey")
class ProviderKeyOutputSerializer(serializers.ModelSerializer):
    feature = serializers.SlugRelatedField(
        slug_field="key", read_only=True, help_text="Key of the feature the key is mapped to."
    )
    mapped = serializers.BooleanField(
        source="is_mapped", read_only=True, help_text="Mapped to a feature."
    )

    class Meta:
        model = ProviderKey
        fields = [
            "id", "provider", "key_id", "label", "feature", "mapped", "team", "environment",
            "status", "last_seen_at", *TIMESTAMPS,
        ]  # fmt: skip
        read_only_fields = fields


@extend_schema_serializer(component_name="ProviderKey")
class ProviderKeyInputSerializer(serializers.ModelSerializer):
    feature = OrganizationSlugRelatedField(
        model=Feature,
        slug_field="key",
        required=False,
        allow_null=True,
        help_text="Key of the feature to map the key to; null unmaps it.",
    )

    class Meta:
        model = ProviderKey
        fields = [
            "provider", "key_id", "label", "feature", "team", "environment", "status",
            "last_seen_at",
        ]  # fmt: skip
        extra_kwargs = {
            "provider": {"help_text": "Cannot change later."},
            "key_id": {"help_text": "The provider's id of the key (never the secret); fixed."},
        }
