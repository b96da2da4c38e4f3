"""Output serializers of the usage API (events are written by the ingest service)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from ingestion.models import DailyUsage, UsageEvent

TOKENS = [
    "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens",
    "reasoning_tokens",
]  # fmt: skip


@extend_schema_serializer(component_name="UsageEvent")
class UsageEventOutputSerializer(serializers.ModelSerializer):
    customer_id = serializers.CharField(source="customer.external_id", default=None)
    feature = serializers.CharField(source="feature.key", default=None)
    plan = serializers.CharField(source="plan.code", default=None)
    metadata = serializers.DictField(child=serializers.CharField())

    class Meta:
        model = UsageEvent
        fields = [
            "event_id", "timestamp", "received_at", "customer_id", "user_id", "feature",
            "workflow", "prompt_version", "plan", "provider", "model", "api_key_id",
            "environment", *TOKENS, "batch", "service_tier", "status", "attempt", "latency_ms",
            "quality_score", "billable", "cost", "reported_cost", "estimated_cost",
            "cost_source", "cost_status", "price_reference", "price_date",
            "attribution_source", "attribution_confidence", "metadata",
        ]  # fmt: skip
        read_only_fields = fields


@extend_schema_serializer(component_name="DailyUsage")
class DailyUsageOutputSerializer(serializers.ModelSerializer):
    customer_id = serializers.CharField(source="customer.external_id", default=None)
    feature = serializers.CharField(source="feature.key", default=None)
    plan = serializers.CharField(source="plan.code", default=None)

    class Meta:
        model = DailyUsage
        fields = [
            "day", "customer_id", "feature", "plan", "provider", "model", "environment",
            "batch", "billable", "requests", "errors", "retries", *TOKENS, "cost",
            "estimated_cost", "retry_cost", "unpriced_requests",
        ]  # fmt: skip
        read_only_fields = fields


class EventOutcomeSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "conflict", "rejected"])
    reason = serializers.CharField(allow_blank=True)


class IngestResponseSerializer(serializers.Serializer):
    results = EventOutcomeSerializer(many=True)
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    conflicts = serializers.IntegerField()
    rejected = serializers.IntegerField()


class IngestRequestSerializer(serializers.Serializer):
    """Documentation only: the ingest view validates events itself, at speed."""

    events = serializers.ListField(
        child=serializers.DictField(), min_length=1, max_length=1000,
        help_text="Usage events (fields as in the README); a single event object is also accepted.",
    )  # fmt: skip
