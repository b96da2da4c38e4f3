"""The findings API: findings and their triage, remediation items, budgets, the weekly review.

Who may do what:

- Reading: a service key with the ``read`` scope, or a staff member of the organization
  (any role; every role triages findings, DESIGN §8).
- Acting (triage, comments, remediation items): a person, i.e. a staff session. A
  service key has no person behind it to hold to maker-checker, so it is answered 403
  on every action. What the person's role allows is decided by the services
  (``findings.services.roles``): the API adds no rule of its own.

A refused workflow rule answers with the service's message: 400 for bad input (the field
named), 403 when the actor may not (``permission_denied``, ``approval_permission_denied``,
``self_approval_forbidden``), 409 when the item or finding is not in a state that allows
it (``illegal_transition``, ``already_decided``, ``item_locked``). Rows of another
organization are 404, before any other check.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, filters, mixins, permissions, renderers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.settings import api_settings

from accounts.models import ServiceAPIKey
from findings.api import serializers
from findings.api.filters import BudgetFilter, FindingFilter, RemediationFilter
from findings.models import (
    Budget,
    Finding,
    FindingActivity,
    RemediationApproval,
    RemediationItem,
    RemediationTransition,
)
from findings.review_export import weekly_review_csv, weekly_review_markdown
from findings.selectors import finding_list, findings_identified
from findings.selectors_review import weekly_review
from findings.services import remediation as remediation_services
from findings.services import triage
from findings.services.verification import remediation_verify
from metron.api.pagination import PageNumberPagination
from metron.api.permissions import IsOrganizationMember, request_organization
from metron.api.viewsets import OrganizationScopedViewSet
from metron.money import quantize_money

PERSON_REQUIRED = (
    "Triage and remediation actions are taken by a person: sign in as a staff member. "
    "A service key can read findings, remediation items and budgets, but not act on them."
)
FINDING_FIXED = "An item's finding cannot change; cancel the item and request a new one."
SUMMARY_TEXT = "{count} finding{s} · ${amount:,}/mo identified"
# Service field names → API field names, for the services' error messages.
API_FIELD_NAMES = {"customer": "customer_id", "provider_key": "api_key_id"}

ERRORS_400_403_409 = {
    400: OpenApiResponse(description="Invalid input; `fields` names what and why."),
    403: OpenApiResponse(description="The caller may not (a service key, a role, maker-checker)."),
    404: OpenApiResponse(description="No such row in the caller's organization."),
    409: OpenApiResponse(description="Not allowed from the current state; the message says why."),
}


def is_service_key(request) -> bool:
    return isinstance(request.auth, ServiceAPIKey)


def workflow_api_error(error: DjangoValidationError) -> exceptions.APIException:
    """A service's refusal as an API error with its status, code and message."""
    status_code = getattr(error, "status_code", 400)
    if status_code == 400:
        if hasattr(error, "error_dict"):  # a model's full_clean: messages by field
            by_field = error.message_dict
        else:
            by_field = {getattr(error, "field", None) or "__all__": error.messages}
        return exceptions.ValidationError(
            {
                "non_field_errors" if name == "__all__" else API_FIELD_NAMES.get(name, name): msgs
                for name, msgs in by_field.items()
            }
        )
    api_error = exceptions.APIException(detail=str(error), code=error.code)
    api_error.status_code = status_code
    return api_error


class FindingsAccess(IsOrganizationMember):
    """Reads: see ``IsOrganizationMember`` (any role). Writes: a person, never a key.

    A key's write on a row is refused once the row is found (``has_object_permission``),
    so a row of another organization is still a plain 404.
    """

    def has_permission(self, request, view) -> bool:
        # ``view.action`` is None for a method the route does not serve: that stays a 405.
        writes = request.method not in permissions.SAFE_METHODS and view.action is not None
        if is_service_key(request) and writes:
            if not getattr(view, "detail", False):
                raise exceptions.PermissionDenied(PERSON_REQUIRED)
            return True
        return super().has_permission(request, view)

    def has_object_permission(self, request, view, obj) -> bool:
        if is_service_key(request) and request.method not in permissions.SAFE_METHODS:
            raise exceptions.PermissionDenied(PERSON_REQUIRED)
        return True


class WorkflowViewSet(OrganizationScopedViewSet):
    """Scoped reads, person-only writes, the services' refusals as API errors."""

    permission_classes = [FindingsAccess]
    # Every role reads and triages (the services check roles), so no model permission.
    permission_model = None
    lookup_value_regex = "[0-9]+"

    def handle_exception(self, exc):
        if isinstance(exc, DjangoValidationError):
            exc = workflow_api_error(exc)
        return super().handle_exception(exc)

    def get_object(self):
        # Query filters (``?status=``) select rows of a list, not the row of a URL.
        obj = get_object_or_404(self.get_queryset(), pk=self.kwargs[self.lookup_field])
        self.check_object_permissions(self.request, obj)
        return obj

    def input(self, serializer_class, **kwargs) -> dict:
        serializer = serializer_class(
            data=self.request.data, context=self.get_serializer_context(), **kwargs
        )
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["organization"] = (
            None
            if getattr(self, "swagger_fake_view", False)
            else request_organization(self.request)
        )
        return context


# --- findings ---------------------------------------------------------------------------


SUMMARY_SCHEMA = {
    "type": "object",
    "description": "The list's headline over all open waste findings of the organization "
    "(neither resolved nor dismissed), whatever the filters.",
    "properties": {
        "findings": {"type": "integer", "description": "How many."},
        "monthly_savings": {
            "type": "string",
            "format": "decimal",
            "description": "Their monthly savings together, USD.",
        },
        "text": {"type": "string", "example": "6 findings · $4,210.00/mo identified"},
    },
    "required": ["findings", "monthly_savings", "text"],
}


class FindingPagination(PageNumberPagination):
    """Pages of findings with the list's headline (``summary``) next to them."""

    def get_paginated_response(self, data, summary=None) -> Response:
        response = super().get_paginated_response(data)
        if summary is not None:
            response.data = {**response.data, "summary": summary}
        return response

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["summary"] = SUMMARY_SCHEMA
        paginated["required"] = [*paginated.get("required", []), "summary"]
        return paginated


def findings_summary(*, organization) -> dict:
    """The list's headline ("N findings · $X/mo identified"): open waste findings."""
    count, savings = findings_identified(organization=organization)
    savings = quantize_money(savings)
    text = SUMMARY_TEXT.format(count=count, s="" if count == 1 else "s", amount=savings)
    return {"findings": count, "monthly_savings": str(savings), "text": text}


@extend_schema_view(
    list=extend_schema(
        description="The prioritized list, highest monthly dollars first. `summary` is the "
        "headline over all open waste findings of the organization, whatever the filters."
    ),
    retrieve=extend_schema(responses=serializers.FindingDetailSerializer),
)
class FindingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkflowViewSet):
    """Findings: quantified waste (the six detectors) and alerts, and their triage.

    Triage moves a finding open → acknowledged → in progress → resolved, dismissed (reason
    required) or snoozed (until a date); resolved, dismissed and snoozed ones reopen.
    `owner` is a username. Each action answers the finding as it is now, with its log.
    """

    model = Finding
    serializer_class = serializers.FindingOutputSerializer
    filterset_class = FindingFilter
    filter_backends = [*OrganizationScopedViewSet.filter_backends, filters.SearchFilter]
    search_fields = ["title"]
    ordering_fields = ["monthly_savings", "last_seen_at", "first_seen_at"]
    ordering = ["-monthly_savings", "-last_seen_at"]
    pagination_class = FindingPagination

    def get_base_queryset(self, *, organization):
        findings = finding_list(organization=organization)
        if self.detail:
            findings = findings.prefetch_related(
                Prefetch("activity", FindingActivity.objects.select_related("actor")),
                Prefetch("remediations", RemediationItem.objects.order_by("created_at", "pk")),
            )
        return findings

    def get_serializer_class(self):
        return serializers.FindingDetailSerializer if self.detail else self.serializer_class

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        data = self.get_serializer(page, many=True).data
        summary = findings_summary(organization=request_organization(request))
        return self.paginator.get_paginated_response(data, summary=summary)

    def respond(self, finding: Finding) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=finding.pk)).data)

    def transition(self, service, input_class=serializers.ReasonInputSerializer) -> Response:
        finding = self.get_object()
        data = self.input(input_class)
        return self.respond(service(finding=finding, actor=self.request.user, **data))

    @extend_schema(
        request=serializers.ReasonInputSerializer,
        responses={200: serializers.FindingDetailSerializer, **ERRORS_400_403_409},
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Open → acknowledged: someone has seen it."""
        return self.transition(triage.finding_acknowledge)

    @extend_schema(
        request=serializers.ReasonInputSerializer,
        responses={200: serializers.FindingDetailSerializer, **ERRORS_400_403_409},
    )
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        """Open or acknowledged → in progress: someone is working on it."""
        return self.transition(triage.finding_start)

    @extend_schema(
        request=serializers.ReasonInputSerializer,
        responses={200: serializers.FindingDetailSerializer, **ERRORS_400_403_409},
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        """Open, acknowledged or in progress → resolved (by hand)."""
        return self.transition(triage.finding_resolve)

    @extend_schema(
        request=serializers.DismissInputSerializer,
        responses={200: serializers.FindingDetailSerializer, **ERRORS_400_403_409},
    )
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        """Dismiss a finding not worth acting on; `reason` is required and kept."""
        return self.transition(triage.finding_dismiss, serializers.DismissInputSerializer)

    @extend_schema(
        request=serializers.SnoozeInputSerializer,
        responses={200: serializers.FindingDetailSerializer, **ERRORS_400_403_409},
    )
    @action(detail=True, methods=["post"])
    def snooze(self, request, pk=None):
        """Hide the finding until `until` (a UTC date after today), when it reopens."""
        return self.transition(triage.finding_snooze, serializers.SnoozeInputSerializer)

    @extend_schema(
        request=serializers.ReasonInputSerializer,
        responses={200: serializers.FindingDetailSerializer, **ERRORS_400_403_409},
    )
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        """Resolved, dismissed or snoozed → open."""
        return self.transition(triage.finding_reopen)

    @extend_schema(
        request=serializers.AssignInputSerializer,
        responses={200: serializers.FindingDetailSerializer, **ERRORS_400_403_409},
    )
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        """Give the finding an owner (a member's username) or none (null)."""
        return self.transition(triage.finding_assign, serializers.AssignInputSerializer)

    @extend_schema(
        methods=["GET"], responses=serializers.CommentOutputSerializer(many=True), filters=False
    )
    @extend_schema(
        methods=["POST"],
        request=serializers.CommentInputSerializer,
        responses={201: serializers.CommentOutputSerializer, **ERRORS_400_403_409},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        pagination_class=PageNumberPagination,
        filter_backends=[],
    )
    def comments(self, request, pk=None):
        """Staff notes on the finding, oldest first; POST adds one."""
        finding = self.get_object()
        if request.method == "POST":
            data = self.input(serializers.CommentInputSerializer)
            comment = triage.finding_comment_add(finding=finding, actor=request.user, **data)
            return Response(
                serializers.CommentOutputSerializer(comment).data, status=status.HTTP_201_CREATED
            )
        comments = finding.comments.select_related("author").order_by("created_at", "pk")
        page = self.paginate_queryset(comments)
        return self.get_paginated_response(
            serializers.CommentOutputSerializer(page, many=True).data
        )


# --- remediation items ------------------------------------------------------------------


REMEDIATION_ACTION_SCHEMA = extend_schema(
    request=serializers.ReasonInputSerializer,
    responses={200: serializers.RemediationDetailSerializer, **ERRORS_400_403_409},
)


@extend_schema_view(
    retrieve=extend_schema(responses=serializers.RemediationDetailSerializer),
    create=extend_schema(
        request=serializers.RemediationInputSerializer,
        responses={201: serializers.RemediationDetailSerializer, **ERRORS_400_403_409},
    ),
    partial_update=extend_schema(
        request=serializers.RemediationInputSerializer,
        responses={200: serializers.RemediationDetailSerializer, **ERRORS_400_403_409},
    ),
)
class RemediationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkflowViewSet):
    """Remediation items: draft → pending approval → approved / rejected → implemented →
    verified, or cancelled.

    Maker-checker: whoever requested an item never approves or rejects it, superusers
    included. Pricing kinds (reprice plan, restructure plan, quota) are approved by finance
    or an admin only; from the organization's dollar threshold two approvers are needed.
    Only the requester edits (PATCH) and submits a draft; once submitted the content is
    frozen. `allowed_actions` (detail) lists what the caller may do now.
    """

    model = RemediationItem
    serializer_class = serializers.RemediationOutputSerializer
    input_serializer_class = serializers.RemediationInputSerializer
    filterset_class = RemediationFilter
    ordering_fields = ["created_at", "estimated_monthly_savings", "submitted_at"]
    ordering = ["-created_at"]

    def get_base_queryset(self, *, organization):
        return (
            RemediationItem.objects.filter(organization=organization)
            .select_related(
                "organization", "requested_by", "customer", "feature", "plan", "provider_key"
            )
            .prefetch_related(
                Prefetch("approvals", RemediationApproval.objects.select_related("approver")),
                Prefetch("transitions", RemediationTransition.objects.select_related("actor")),
            )
        )

    def get_serializer_class(self):
        return serializers.RemediationDetailSerializer if self.detail else self.serializer_class

    def respond(self, item: RemediationItem, code: int = status.HTTP_200_OK) -> Response:
        item = self.get_queryset().get(pk=item.pk)
        allowed = (
            frozenset()
            if is_service_key(self.request)
            else remediation_services.remediation_allowed_actions(item=item, user=self.request.user)
        )
        context = {**self.get_serializer_context(), "allowed_actions": {item.pk: allowed}}
        return Response(serializers.RemediationDetailSerializer(item, context=context).data, code)

    def retrieve(self, request, *args, **kwargs):
        return self.respond(self.get_object())

    def create(self, request, *args, **kwargs):
        """Request an item (a draft), from a finding or from scratch."""
        data = self.input(self.input_serializer_class)
        item = remediation_services.remediation_create(
            actor=request.user, organization=request_organization(request), **data
        )
        return self.respond(item, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        """Change a draft's content (its requester only)."""
        item = self.get_object()
        data = self.input(self.input_serializer_class, partial=True)
        data.pop("reason", None)
        if "finding" in data:
            raise exceptions.ValidationError({"finding": [FINDING_FIXED]})
        return self.respond(
            remediation_services.remediation_update(item=item, actor=request.user, **data)
        )

    def act(self, service) -> Response:
        item = self.get_object()
        data = self.input(serializers.ReasonInputSerializer)
        return self.respond(service(item=item, actor=self.request.user, **data))

    @REMEDIATION_ACTION_SCHEMA
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        """Draft → pending approval (the requester only); approvers are notified."""
        return self.act(remediation_services.remediation_submit)

    @REMEDIATION_ACTION_SCHEMA
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve a pending item (never its requester; pricing kinds: finance or admin)."""
        return self.act(remediation_services.remediation_approve)

    @REMEDIATION_ACTION_SCHEMA
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Reject a pending item (the same approvers); `reason` is required."""
        return self.act(remediation_services.remediation_reject)

    @REMEDIATION_ACTION_SCHEMA
    @action(detail=True, methods=["post"])
    def implement(self, request, pk=None):
        """Approved → implemented: the change is live; verification counts from now."""
        return self.act(remediation_services.remediation_implement)

    @REMEDIATION_ACTION_SCHEMA
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a draft, pending or approved item (its requester or an admin); a reason
        is required once submitted."""
        return self.act(remediation_services.remediation_cancel)

    @REMEDIATION_ACTION_SCHEMA
    @action(detail=True, methods=["post"])
    def verify(self, request, pk=None):
        """Implemented → verified: measure realized savings once the verification window
        is over (409 `verification_not_due` before); scheduled daily too."""
        return self.act(remediation_verify)


# --- budgets ----------------------------------------------------------------------------


class BudgetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkflowViewSet):
    """Monthly AI-cost budgets: their state (ok, warning, exceeded) and the month's spend
    at the last evaluation. Read-only."""

    model = Budget
    serializer_class = serializers.BudgetOutputSerializer
    filterset_class = BudgetFilter
    ordering_fields = ["name", "month_spend", "monthly_limit"]
    ordering = ["name"]

    def get_base_queryset(self, *, organization):
        return Budget.objects.filter(organization=organization).select_related(
            "customer", "feature", "plan", "provider_key"
        )


# --- weekly review ----------------------------------------------------------------------


class TextRenderer(renderers.BaseRenderer):
    """Text the view already made (an export); errors are rendered as JSON instead."""

    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return data.encode(self.charset)


class CSVRenderer(TextRenderer):
    media_type = "text/csv"
    format = "csv"


class MarkdownRenderer(TextRenderer):
    media_type = "text/markdown"
    format = "md"


EXPORTS = {"csv": weekly_review_csv, "md": weekly_review_markdown}


class WeeklyReviewViewSet(WorkflowViewSet):
    """The weekly review: top negative-margin feature paths, prompt-version changes with
    their margin impact, budget threshold changes, and pricing or quota actions for
    outlier tenants (with the outliers no action covers yet).

    JSON by default; CSV with `?format=csv` or `Accept: text/csv`, Markdown with
    `?format=md` or `Accept: text/markdown`.
    """

    model = Finding
    pagination_class = None
    filter_backends = []
    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, CSVRenderer, MarkdownRenderer]

    @extend_schema(
        parameters=[serializers.WeeklyReviewQuerySerializer],
        responses={
            (200, "application/json"): serializers.WeeklyReviewSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "text/markdown"): OpenApiTypes.STR,
            400: OpenApiResponse(description="A malformed `week_start`."),
        },
    )
    def list(self, request, *args, **kwargs):
        query = serializers.WeeklyReviewQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        organization = request_organization(request)
        review = weekly_review(
            organization=organization, week_start=query.validated_data.get("week_start")
        )
        export = EXPORTS.get(request.accepted_renderer.format)
        if export is None:
            return Response(serializers.WeeklyReviewSerializer(review).data)
        name = f"weekly-review-{organization.slug}-{review.week_start.isoformat()}"
        disposition = f'attachment; filename="{name}.{request.accepted_renderer.format}"'
        return Response(export(review), headers={"Content-Disposition": disposition})

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # An error body is a dict: it goes out as JSON whatever format was asked for.
        if response.status_code >= 400 and isinstance(response.accepted_renderer, TextRenderer):
            response.accepted_renderer = renderers.JSONRenderer()
            response.accepted_media_type = "application/json"
        return response
