"""The economics API: a period snapshot's figures, read scope (DESIGN §7).

``?period=YYYY-MM`` picks a calendar month, ``?period=rolling_30d`` the rolling 30 days, and
no period the latest month. Every body carries the period it describes (``period``,
``period_start``, ``period_end``, ``as_of``, ``stale``, ``coverage``) next to ``results``.
A malformed period is a 400; a period not computed yet is a 404 that says how to compute it.
"""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins
from rest_framework.response import Response

from economics.api import filters, serializers
from economics.models import CustomerEconomics, EconomicsSnapshot
from economics.selectors import PeriodError, customer_economics_list, parse_period, snapshot_get
from metron.api.pagination import PageNumberPagination
from metron.api.permissions import request_organization
from metron.api.viewsets import OrganizationScopedViewSet

NO_MONTH = (
    "No economics for {period} yet; run manage.py recompute_economics {org} --period {period}"
)
NO_LATEST = "No economics yet; run manage.py recompute_economics {org}"
NO_ROLLING = "No rolling 30-day economics yet; run manage.py recompute_economics {org}"
UNKNOWN_DIMENSION = "Unknown dimension {value!r}; available: {available}."
MODEL_REVENUE_ALLOCATION = (
    "Each customer's revenue is split over the models it used in proportion to its AI cost "
    "on each, in whole cents, so the models' revenue adds up to the customers' revenue."
)

PERIOD = OpenApiParameter(
    "period",
    OpenApiTypes.STR,
    description="`YYYY-MM` (a calendar month) or `rolling_30d`; default the latest month.",
)
# Both in the one error shape of metron.api.exceptions.
ERRORS = {
    400: OpenApiResponse(description="A malformed period or an invalid filter value."),
    404: OpenApiResponse(description="No figures for that period yet (the message says how)."),
}


class SnapshotPagination(PageNumberPagination):
    """Pages of a snapshot's rows with the snapshot's period next to them."""

    def get_paginated_response(self, data, period=None) -> Response:
        return Response(
            {
                "count": self.page.paginator.count,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                **(period or {}),
                "results": data,
            }
        )


class SnapshotViewSet(OrganizationScopedViewSet):
    """Resolves ``?period=`` to the caller's snapshot once the caller is allowed in."""

    model = EconomicsSnapshot
    snapshot: EconomicsSnapshot

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # After authentication and permissions, so an outsider learns nothing of periods;
        # only for reads, so other methods still answer 405 (OPTIONS its metadata).
        if self.action == "list":
            self.snapshot = self.snapshot_resolve(request)

    def snapshot_resolve(self, request) -> EconomicsSnapshot:
        organization = request_organization(request)
        try:
            kind, start = parse_period(request.query_params.get("period"))
        except PeriodError as error:
            raise exceptions.ValidationError({"period": [str(error)]}) from None
        snapshot = snapshot_get(organization=organization, kind=kind, period_start=start)
        if snapshot is not None:
            return snapshot
        if start is not None:
            message = NO_MONTH.format(period=f"{start:%Y-%m}", org=organization.slug)
        elif kind == EconomicsSnapshot.Kind.ROLLING_30D:
            message = NO_ROLLING.format(org=organization.slug)
        else:
            message = NO_LATEST.format(org=organization.slug)
        raise exceptions.NotFound(message)

    def period(self) -> dict:
        return serializers.PeriodSerializer(self.snapshot).data

    def query(self, query_class: type[filters.SnapshotRowsQuery]) -> filters.SnapshotRowsQuery:
        query = query_class(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return query

    def respond(self, rows, row_serializer, **extra) -> Response:
        results = row_serializer(rows, many=True).data
        return Response({**self.period(), **extra, "results": results})


class CustomerEconomicsViewSet(mixins.ListModelMixin, SnapshotViewSet):
    """Customer profitability: one row per customer, worst AI cost ratio first.

    Money is USD as decimal strings; ratios are fractions of 1 (null without revenue).
    Cost without revenue has no ratio and counts as the worst (margin-negative); accounts
    with neither cost nor revenue come last. `cost_change`, `margin_change` and
    `ratio_change` compare with the previous period (null when there is none).
    """

    model = CustomerEconomics
    serializer_class = serializers.CustomerEconomicsSerializer
    filterset_class = filters.CustomerEconomicsFilter
    filter_backends = [DjangoFilterBackend, filters.CustomerEconomicsOrdering]
    pagination_class = SnapshotPagination

    def get_base_queryset(self, *, organization):
        return customer_economics_list(snapshot=self.snapshot)

    @extend_schema(
        parameters=[PERIOD], responses={200: serializers.CustomerEconomicsPageSerializer, **ERRORS}
    )
    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        rows = self.get_serializer(page, many=True).data
        return self.paginator.get_paginated_response(rows, period=self.period())


class JSONListViewSet(SnapshotViewSet):
    """A small list from the snapshot's JSON: served whole, no pagination."""

    filter_backends = []
    pagination_class = None


class FeatureEconomicsViewSet(JSONListViewSet):
    """Feature economics: cost, invocations, active users and health by plan, costliest first.

    One row per (feature, plan) and one all-plans row per feature (`plan` null; `?plan=all`
    lists only those). Health = cost per active user ÷ the plan's revenue per active user.
    """

    @extend_schema(
        parameters=[PERIOD, filters.FeatureQuery],
        responses={200: serializers.FeatureListSerializer, **ERRORS},
    )
    def list(self, request, *args, **kwargs):
        query = self.query(filters.FeatureQuery)
        rows = filters.rows_select(
            self.snapshot.features, filters=query.row_filters(), ordering=query.ordering()
        )
        return self.respond(rows, serializers.FeatureRowSerializer)


class PlanEconomicsViewSet(JSONListViewSet):
    """Plan economics: accounts, average cost and revenue, margin, per-account cost spread
    (standard deviation, median, P95), the tail and its overconsuming accounts."""

    @extend_schema(
        parameters=[PERIOD, filters.PlanQuery],
        responses={200: serializers.PlanListSerializer, **ERRORS},
    )
    def list(self, request, *args, **kwargs):
        query = self.query(filters.PlanQuery)
        rows = filters.rows_select(
            self.snapshot.plans, filters=query.row_filters(), ordering=query.ordering()
        )
        return self.respond(rows, serializers.PlanRowSerializer)


class ModelMarginViewSet(JSONListViewSet):
    """Margin by provider model, costliest first; revenue is allocated (see
    `revenue_allocation`)."""

    @extend_schema(
        parameters=[PERIOD, filters.ModelMarginQuery],
        responses={200: serializers.ModelMarginListSerializer, **ERRORS},
    )
    def list(self, request, *args, **kwargs):
        query = self.query(filters.ModelMarginQuery)
        rows = filters.rows_select(
            self.snapshot.model_margins, filters=query.row_filters(), ordering=query.ordering()
        )
        return self.respond(
            rows, serializers.ModelMarginSerializer, revenue_allocation=MODEL_REVENUE_ALLOCATION
        )


class SegmentEconomicsViewSet(JSONListViewSet):
    """Margin by segment of `?dimension=` (region, segment, plan tier, a metadata key);
    without it, the dimensions available. Revenue is allocated (see `revenue_allocation`)."""

    @extend_schema(
        parameters=[PERIOD, filters.SegmentQuery],
        responses={200: serializers.SegmentListSerializer, **ERRORS},
    )
    def list(self, request, *args, **kwargs):
        query = self.query(filters.SegmentQuery)
        segments = self.snapshot.segments
        dimensions = segments.get("dimensions", {})
        extra = {"revenue_allocation": segments.get("revenue_allocation", "")}
        dimension = query.validated_data.get("dimension")
        if not dimension:
            available = [
                {"dimension": name, "segments": len(rows)} for name, rows in dimensions.items()
            ]
            return self.respond(
                available, serializers.SegmentDimensionSerializer, dimension=None, **extra
            )
        if dimension not in dimensions:
            message = UNKNOWN_DIMENSION.format(
                value=dimension, available=", ".join(dimensions) or "none"
            )
            raise exceptions.ValidationError({"dimension": [message]})
        rows = filters.rows_select(
            dimensions[dimension], filters=query.row_filters(), ordering=query.ordering()
        )
        return self.respond(rows, serializers.SegmentRowSerializer, dimension=dimension, **extra)


class CohortEconomicsViewSet(JSONListViewSet):
    """Cohort margin by customer start month, month 1…N of each cohort."""

    @extend_schema(parameters=[PERIOD], responses={200: serializers.CohortListSerializer, **ERRORS})
    def list(self, request, *args, **kwargs):
        return self.respond(self.snapshot.cohorts, serializers.CohortSerializer)


class TrendViewSet(JSONListViewSet):
    """The organization's revenue, cost and margin over the period, at `granularity`
    (day, week or month, adapted to the range)."""

    @extend_schema(parameters=[PERIOD], responses={200: serializers.TrendSerializer, **ERRORS})
    def list(self, request, *args, **kwargs):
        granularity = self.snapshot.summary.get("granularity")
        return self.respond(
            self.snapshot.trend, serializers.TrendPointSerializer, granularity=granularity
        )


class SummaryViewSet(JSONListViewSet):
    """The period's totals: cost, revenue, margin, band and profitability counts, underwater
    and at-risk accounts, the ten worst accounts by cost ratio, unattributed and
    uninstrumented cost."""

    @extend_schema(parameters=[PERIOD], responses={200: serializers.SummarySerializer, **ERRORS})
    def list(self, request, *args, **kwargs):
        figures = serializers.SummaryFiguresSerializer(self.snapshot.summary).data
        return Response({**self.period(), **figures})
