"""The usage API: ingest events, read the ledger and its daily rollups."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, parsers, status
from rest_framework.response import Response

from ingestion import selectors
from ingestion.api import filters, serializers
from ingestion.models import DailyUsage, UsageEvent
from ingestion.services.ingest import decimal_json_loads, usage_events_ingest
from ingestion.validation import MAX_BATCH, WireBatch, wire_batch_decode
from metron.api.exceptions import PayloadTooLarge
from metron.api.permissions import request_organization
from metron.api.viewsets import OrganizationScopedViewSet

BODY_TOO_LARGE = "The request body is larger than {limit} bytes; send smaller batches."
EMPTY_BATCH = f'Send {{"events": [ … ]}} with 1 to {MAX_BATCH} events, or one event object.'
BATCH_TOO_LARGE = f"A batch holds at most {MAX_BATCH} events; split it."
INVALID_JSON = "The body is not valid JSON: {error}"


class DecimalJSONParser(parsers.JSONParser):
    """JSON with exact Decimal numbers (costs must not pass through float), size-capped."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise PayloadTooLarge(BODY_TOO_LARGE.format(limit=limit))
        # The usual body, a batch of well-formed events, decodes straight into checked
        # events; anything else is decoded as plain JSON and judged event by event.
        batch = wire_batch_decode(body)
        if batch is not None:
            return batch
        try:
            return decimal_json_loads(body)
        except ValueError as error:
            raise exceptions.ParseError(INVALID_JSON.format(error=error)) from None


class UsageEventViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet
):
    """Usage events: `POST` a batch (ingest scope), read the ledger (read scope).

    Events are addressed by their `event_id`.
    """

    model = UsageEvent
    scopes = {"POST": "ingest"}
    permission_action = {"POST": "add"}
    lookup_field = "event_id"
    serializer_class = serializers.UsageEventOutputSerializer
    filterset_class = filters.UsageEventFilter
    ordering_fields = ["timestamp", "cost", "received_at"]
    parser_classes = [DecimalJSONParser]

    def get_base_queryset(self, *, organization):
        return selectors.usage_event_list(organization=organization)

    @extend_schema(
        request=serializers.IngestRequestSerializer,
        responses={
            200: OpenApiResponse(
                serializers.IngestResponseSerializer,
                description="Every event accepted or a duplicate of one already stored.",
            ),
            207: OpenApiResponse(
                serializers.IngestResponseSerializer,
                description="Partial: some events were rejected or conflict; see results.",
            ),
            422: OpenApiResponse(
                serializers.IngestResponseSerializer,
                description="No event was stored: all rejected or in conflict.",
            ),
        },
    )
    def create(self, request, *args, **kwargs):
        """Ingest 1 to 1,000 events; each gets an outcome, in the order sent.

        Idempotent per `event_id`: resending is safe (`duplicate`); the same id
        with a different payload is a `conflict` (the original is kept and the
        conflict recorded for review); invalid or out-of-window events are
        `rejected` with a reason.
        """
        data = request.data
        if isinstance(data, WireBatch):
            events = data.events
        elif isinstance(data, dict) and "events" in data:
            events = data["events"]
        else:
            events = [data]
        if not isinstance(events, list) or not events or not all(events):
            raise exceptions.ValidationError({"events": [EMPTY_BATCH]})
        if len(events) > MAX_BATCH:
            raise exceptions.ValidationError({"events": [BATCH_TOO_LARGE]})

        result = usage_events_ingest(organization=request_organization(request), raw_events=events)
        stored = result.accepted + result.duplicates
        if stored == len(events):
            code = status.HTTP_200_OK
        elif stored:
            code = status.HTTP_207_MULTI_STATUS
        else:
            code = status.HTTP_422_UNPROCESSABLE_ENTITY
        body = {
            "results": [
                {"event_id": o.event_id, "status": o.status, "reason": o.reason}
                for o in result.outcomes
            ],
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "conflicts": result.conflicts,
            "rejected": result.rejected,
        }
        return Response(body, status=code)


class DailyUsageViewSet(mixins.ListModelMixin, OrganizationScopedViewSet):
    """Daily usage rollups: requests, tokens and cost per day and dimension tuple."""

    model = DailyUsage
    serializer_class = serializers.DailyUsageOutputSerializer
    filterset_class = filters.DailyUsageFilter
    ordering_fields = ["day", "cost", "requests"]

    def get_base_queryset(self, *, organization):
        return selectors.daily_usage_list(organization=organization)
