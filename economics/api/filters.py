"""Query parameters of the economics API: filters and orderings, all validated strictly.

Customer rows are filtered in SQL (django-filter); the other lists are a snapshot's JSON, a
few dozen rows, filtered and sorted here in Python. An unknown choice is a 400 everywhere,
with the same message.
"""

from __future__ import annotations

from decimal import Decimal

import django_filters
from django.db.models import Case, F, IntegerField, Value, When
from rest_framework import exceptions, serializers
from rest_framework.filters import BaseFilterBackend

from economics.api.serializers import BANDS
from economics.models import CustomerEconomics
from metron.api.filters import StrictBooleanFilter

INVALID_CHOICE = "Select a valid choice. {input} is not one of the available choices."
ALL_PLANS = "all"

# --- customers (SQL) ----------------------------------------------------------------------------


class CustomerEconomicsFilter(django_filters.FilterSet):
    band = django_filters.ChoiceFilter(choices=[(band, band) for band in BANDS])
    plan = django_filters.CharFilter(field_name="plan__code", label="Plan code.")
    underwater = StrictBooleanFilter()

    class Meta:
        model = CustomerEconomics
        fields = ["band", "plan", "underwater"]


# Worst first as the calculator ranks accounts (calculations.top_accounts_by_cost_ratio): cost
# with no revenue has no ratio yet is the worst, so it leads; accounts with neither cost nor
# revenue come last.
_RATIO_RANK = Case(
    When(cost_ratio__isnull=True, ai_cost__gt=0, then=Value(0)),
    When(cost_ratio__isnull=True, then=Value(2)),
    default=Value(1),
    output_field=IntegerField(),
)
CUSTOMER_ORDERINGS = {
    "-cost_ratio": [_RATIO_RANK.asc(), F("cost_ratio").desc(), F("ai_cost").desc(), "pk"],
    "cost_ratio": [_RATIO_RANK.desc(), F("cost_ratio").asc(), F("ai_cost").asc(), "pk"],
    "-ai_cost": [F("ai_cost").desc(), "pk"],
    "ai_cost": [F("ai_cost").asc(), "pk"],
    "-contribution_margin": [F("contribution_margin").desc(), "pk"],
    "contribution_margin": [F("contribution_margin").asc(), "pk"],
}
CUSTOMER_DEFAULT_ORDERING = "-cost_ratio"


def _invalid_ordering(value: str) -> exceptions.ValidationError:
    return exceptions.ValidationError({"ordering": [INVALID_CHOICE.format(input=value)]})


class CustomerEconomicsOrdering(BaseFilterBackend):
    """``?ordering=`` one of CUSTOMER_ORDERINGS; default worst cost ratio first.

    Ties break on the row id, so pages never overlap.
    """

    def filter_queryset(self, request, queryset, view):
        value = request.query_params.get("ordering") or CUSTOMER_DEFAULT_ORDERING
        if value not in CUSTOMER_ORDERINGS:
            raise _invalid_ordering(value)
        return queryset.order_by(*CUSTOMER_ORDERINGS[value])

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "ordering",
                "required": False,
                "in": "query",
                "description": (
                    "Default `-cost_ratio`: worst AI cost ratio first, where cost without "
                    "revenue (no ratio) counts as the worst and accounts with neither cost "
                    "nor revenue come last; `cost_ratio` is the exact reverse."
                ),
                "schema": {"type": "string", "enum": list(CUSTOMER_ORDERINGS)},
            }
        ]


# --- lists from snapshot JSON (Python) ----------------------------------------------------------


def choice(choices, **kwargs) -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=choices, required=False, allow_blank=True,
        error_messages={"invalid_choice": INVALID_CHOICE}, **kwargs,
    )  # fmt: skip


def ordering_field(*fields: str, default: str) -> serializers.ChoiceField:
    choices = [name for field in fields for name in (f"-{field}", field)]
    return choice(
        choices, default=default, help_text=f"Default {default}; no ratio counts as the highest."
    )


def text(**kwargs) -> serializers.CharField:
    return serializers.CharField(required=False, allow_blank=True, **kwargs)


class SnapshotRowsQuery(serializers.Serializer):
    """Validates a JSON list's query; ``match`` names the parameters that select rows."""

    match: tuple[str, ...] = ()
    band = choice(BANDS)

    def row_filters(self) -> dict[str, object]:
        """{row key: wanted value} of the parameters given (a blank one is not given)."""
        data = self.validated_data
        return {name: data[name] for name in self.match if data.get(name, "") != ""}

    def ordering(self) -> str | None:
        return self.validated_data.get("ordering") or self.fields["ordering"].default


class FeatureQuery(SnapshotRowsQuery):
    match = ("feature", "plan", "band")
    feature = text(help_text="Feature key.")
    plan = text(help_text=f"Plan code, or `{ALL_PLANS}` for the all-plans rows.")
    ordering = ordering_field(
        "cost", "invocations", "active_users", "cost_per_invocation", "cost_per_active_user",
        "health_ratio", default="-cost",
    )  # fmt: skip

    def row_filters(self) -> dict[str, object]:
        filters = super().row_filters()
        if filters.get("plan") == ALL_PLANS:
            filters["plan"] = None  # the all-plans rows carry no plan
        return filters


class PlanQuery(SnapshotRowsQuery):
    match = ("plan", "band")
    plan = text(help_text="Plan code.")
    ordering = ordering_field(
        "ai_cost", "revenue", "contribution_margin", "cost_ratio", "accounts", "cost_p95",
        default="-ai_cost",
    )  # fmt: skip


class ModelMarginQuery(SnapshotRowsQuery):
    match = ("provider", "model", "band")
    provider = text()
    model = text()
    ordering = ordering_field("cost", "revenue", "margin", "cost_ratio", default="-cost")


class SegmentQuery(SnapshotRowsQuery):
    match = ("band",)
    dimension = text(
        help_text='e.g. "region", "segment", "plan_tier", "metadata.<key>"; '
        "without it the dimensions available are listed."
    )
    ordering = ordering_field(
        "cost", "revenue", "margin", "cost_ratio", "customers", default="-cost"
    )


def rows_select(rows: list[dict], *, filters: dict[str, object], ordering: str | None):
    """The rows whose keys equal ``filters``, sorted by ``ordering`` (``-`` for descending).

    A null figure (a ratio without revenue) sorts above every number; ties keep the
    snapshot's order.
    """
    selected = [row for row in rows if all(row.get(k) == v for k, v in filters.items())]
    if not ordering:
        return selected
    field = ordering.lstrip("-")

    def key(row: dict) -> tuple[int, Decimal]:
        value = row.get(field)
        return (1, Decimal(0)) if value is None else (0, Decimal(str(value)))

    return sorted(selected, key=key, reverse=ordering.startswith("-"))
