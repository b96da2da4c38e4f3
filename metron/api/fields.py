"""Serializer fields shared by every app's API."""

from __future__ import annotations

from rest_framework import serializers

from metron.tenancy.scoping import scope_queryset

METADATA_KEY_INVALID = "Metadata keys must be non-empty strings without NUL characters."


class OrganizationSlugRelatedField(serializers.SlugRelatedField):
    """A related row named by its natural key, looked up in the caller's organization only."""

    def __init__(self, *, model, slug_field, **kwargs):
        kwargs.setdefault("queryset", model.objects.all())
        kwargs.setdefault(
            "error_messages",
            {
                "does_not_exist": (
                    f"No {model._meta.verbose_name} with {slug_field} “{{value}}” "
                    "in this organization."
                )
            },
        )
        super().__init__(slug_field=slug_field, **kwargs)

    def get_queryset(self):
        return scope_queryset(super().get_queryset(), self.context.get("organization"))


class StringField(serializers.CharField):
    """A JSON string; numbers are refused rather than turned into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class MetadataField(serializers.DictField):
    """A JSON object of string values."""

    child = StringField(allow_blank=True)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if any(not key or "\x00" in key for key in value):
            raise serializers.ValidationError(METADATA_KEY_INVALID)
        return value
