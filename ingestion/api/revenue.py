"""``/api/v1/revenue/``: revenue lines (billed, recognized, collected) and manual entries.

``GET`` lists the caller's revenue lines (read scope); ``POST`` records revenue of
an offline contract (write scope), recognized ratably per day over
``[period_start, period_end)``, and answers the revenue line it created.
"""

from __future__ import annotations

from decimal import Decimal

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from accounts.models import Customer, User, currency_validator
from ingestion.api.views import DecimalJSONParser
from ingestion.models import ManualRevenueEntry, RevenueLine
from ingestion.revenue_math import MissingFxRateError
from ingestion.revenue_selectors import FxTable, revenue_line_list
from ingestion.services.revenue import manual_revenue_entry_create
from metron.api.fields import OrganizationSlugRelatedField
from metron.api.permissions import request_organization
from metron.api.viewsets import OrganizationScopedViewSet
from metron.money import quantize_money

# --- serializers ---------------------------------------------------------------------------


@extend_schema_serializer(component_name="RevenueLine")
class RevenueLineOutputSerializer(serializers.ModelSerializer):
    customer_id = serializers.CharField(source="customer.external_id", default=None)
    plan = serializers.CharField(source="plan.code", default=None)
    reporting_currency = serializers.SerializerMethodField()
    reporting_billed = serializers.SerializerMethodField()
    reporting_collected = serializers.SerializerMethodField()

    class Meta:
        model = RevenueLine
        fields = [
            "id", "kind", "source_id", "customer_id", "stripe_customer_id", "plan",
            "invoice_stripe_id", "description", "currency", "billed", "recognized", "collected",
            "service_start", "service_end", "billed_on", "collected_on", "reporting_currency",
            "reporting_billed", "reporting_collected", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    def to_representation(self, instance: RevenueLine) -> dict:
        data = super().to_representation(instance)
        # Amounts in the line's currency carry exactly its minor unit (JPY 0, KWD 3 places).
        for name in ("billed", "recognized", "collected"):
            data[name] = str(quantize_money(getattr(instance, name), instance.currency))
        return data

    def _reporting(self, line: RevenueLine, amount: Decimal, day) -> str | None:
        """The amount in the reporting currency at the day's rate; null without a rate."""
        fx: FxTable = self.context["fx"]
        try:
            converted = fx.to_reporting(amount, line.currency, day or line.service_start)
        except MissingFxRateError:
            return None
        return str(quantize_money(converted, fx.organization.reporting_currency))

    def get_reporting_currency(self, line: RevenueLine) -> str:
        return self.context["fx"].organization.reporting_currency

    def get_reporting_billed(self, line: RevenueLine) -> str | None:
        return self._reporting(line, line.billed, line.billed_on)

    def get_reporting_collected(self, line: RevenueLine) -> str | None:
        return self._reporting(line, line.collected, line.collected_on)


class ManualRevenueInputSerializer(serializers.Serializer):
    customer_id = OrganizationSlugRelatedField(
        model=Customer, slug_field="external_id", help_text="The customer's id (external id)."
    )
    period_start = serializers.DateField(help_text="First day of the contract period.")
    period_end = serializers.DateField(help_text="Day after the last one (exclusive).")
    amount = serializers.DecimalField(
        max_digits=18, decimal_places=3, coerce_to_string=True,
        help_text="In the currency's major unit, e.g. \"1200.00\"; negative for a credit.",
    )  # fmt: skip
    currency = serializers.CharField(
        max_length=3, validators=[currency_validator], help_text="ISO 4217, e.g. USD, JPY, KWD."
    )
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)


# --- filters ------------------------------------------------------------------------------


class RevenueLineFilter(django_filters.FilterSet):
    customer_id = django_filters.CharFilter(field_name="customer__external_id")
    since = django_filters.DateFilter(
        field_name="service_end", lookup_expr="gt",
        label="Lines whose service period ends after this day.",
    )  # fmt: skip
    until = django_filters.DateFilter(
        field_name="service_start", lookup_expr="lt",
        label="Lines whose service period starts before this day.",
    )  # fmt: skip
    currency = django_filters.CharFilter(method="filter_currency")

    class Meta:
        model = RevenueLine
        fields = ["kind", "invoice_stripe_id"]

    def filter_currency(self, queryset, name, value):
        return queryset.filter(currency=value.upper())


# --- view ---------------------------------------------------------------------------------------


class RevenueLineViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet
):
    """Revenue lines: billed (invoices, credit notes negative), recognized (spread per day
    over the service period) and collected (payments, refunds negative), per customer,
    in the line's currency and in the organization's reporting currency (null where no
    FX rate is stored). `POST` adds a manual entry for an offline contract."""

    model = RevenueLine
    serializer_class = RevenueLineOutputSerializer
    filterset_class = RevenueLineFilter
    ordering_fields = ["service_start", "billed_on", "collected_on", "billed"]
    parser_classes = [DecimalJSONParser]
    public_field_names = {"customer": "customer_id"}

    @property
    def permission_model(self):
        # Staff add manual entries (finance), while the lines themselves are read-only.
        return ManualRevenueEntry if self.request.method == "POST" else RevenueLine

    def get_base_queryset(self, *, organization):
        return revenue_line_list(organization=organization)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            organization = request_organization(self.request)
            context["organization"] = organization  # scopes customer_id lookups
            context["fx"] = FxTable(organization)
        return context

    @extend_schema(
        request=ManualRevenueInputSerializer, responses={201: RevenueLineOutputSerializer}
    )
    def create(self, request, *args, **kwargs):
        """Record revenue of an offline contract for one of the organization's customers.

        The amount must fit the currency's minor unit (no cents for JPY, three places
        for KWD); a customer of another organization answers 400.
        """
        organization = request_organization(request)
        serializer = ManualRevenueInputSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            entry = manual_revenue_entry_create(
                organization=organization, customer=data["customer_id"],
                period_start=data["period_start"], period_end=data["period_end"],
                amount=data["amount"], currency=data["currency"],
                description=data.get("description", ""), source=ManualRevenueEntry.Source.API,
                created_by=request.user if isinstance(request.user, User) else None,
            )  # fmt: skip
        except Exception as error:
            _rename_fields(error, self.public_field_names)
            raise
        line = self.get_queryset().get(manual_entry=entry)
        return Response(self.get_serializer(line).data, status=status.HTTP_201_CREATED)


def _rename_fields(error: Exception, names: dict[str, str]) -> None:
    """Report a service ValidationError under the API's field names (customer → customer_id)."""
    error_dict = getattr(error, "error_dict", None)
    if error_dict:
        error.error_dict = {names.get(key, key): value for key, value in error_dict.items()}
