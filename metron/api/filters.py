"""Filter pieces shared by every app's API."""

from __future__ import annotations

import django_filters
from django import forms
from django.core.exceptions import ValidationError

BOOLEAN_INVALID = "Use true or false."
TRUE_VALUES = ("true", "1")
FALSE_VALUES = ("false", "0")


class StrictBooleanField(forms.NullBooleanField):
    """``true``/``false`` (or 1/0); anything else is an error instead of being ignored."""

    widget = forms.TextInput

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in TRUE_VALUES:
            return True
        if text in FALSE_VALUES:
            return False
        raise ValidationError(BOOLEAN_INVALID, code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField
