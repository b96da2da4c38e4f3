"""The base viewset of organization-owned API resources.

Rows are addressed by their natural key (``/customers/{customer_id}/``) or by
Metron's numeric id; reads are scoped to the caller's organization; writes are
validated by an input serializer and performed by a service.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models
from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, filters, mixins, serializers, status, viewsets
from rest_framework.response import Response

from metron.api.permissions import request_organization
from metron.tenancy.scoping import scope_queryset

WRITE_METHODS = ("POST", "PUT", "PATCH")
PK_MAX = 2**63 - 1  # bigint primary keys; larger digit strings cannot be an id
DIGITS = re.compile(r"[0-9]+")
LOOKUP_AMBIGUOUS = "{value!r} matches {count} rows; narrow it down with {hint}."
NATURAL_KEY_TAKEN = "A {label} with {identity} already exists in this organization."
NATURAL_KEY_IMMUTABLE = "{name} cannot be changed once created."
LOOKUP_DESCRIPTION = (
    "The {natural} (matched first) or, if no row has that {natural} and the value is all "
    "digits, Metron's numeric id."
)
ACTION_NOTES = {
    "create": "Answers 400, naming the field, if the {natural} is already in use.",
    "update": "The {natural} cannot change once created: a different value answers 400.",
    "partial_update": "The {natural} cannot change once created: a different value answers 400.",
}


class MappedOrderingFilter(filters.OrderingFilter):
    """``?ordering=`` with public names mapped to model fields by ``view.ordering_map``.

    Ties are broken by ``pk`` so that pages never overlap.
    """

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        if not ordering:
            return ordering
        mapping = getattr(view, "ordering_map", {})
        mapped = []
        for term in ordering:
            sign = "-" if term.startswith("-") else ""
            mapped.append(sign + mapping.get(term.lstrip("-"), term.lstrip("-")))
        if not any(term.lstrip("-") in ("pk", "id") for term in mapped):
            mapped.append("pk")
        return mapped


class ServiceKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes service-key authentication in the OpenAPI schema."""

    target_class = "metron.api.authentication.ServiceKeyAuthentication"
    name = "ServiceKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <prefix>.<secret>`, shown once when the key is created.",
        }


class NaturalKeySchema(AutoSchema):
    """Documents the input serializer as request body and the natural-key path parameter."""

    def get_description(self):
        description = super().get_description()
        note = ACTION_NOTES.get(getattr(self.view, "action", None))
        if not note:
            return description
        public = NaturalKeyViewSet._public_names(self.view.input_serializer_class())
        natural = " and ".join(public.get(field, field) for field in self.view.natural_key)
        return f"{description}\n\n{note.format(natural=natural)}"

    def get_request_serializer(self):
        if self.method in WRITE_METHODS and getattr(self.view, "input_serializer_class", None):
            return self.view.input_serializer_class
        return super().get_request_serializer()

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        kwarg = getattr(self.view, "lookup_url_kwarg", None)
        if kwarg and f"{{{kwarg}}}" in self.path:
            parameters.append(
                OpenApiParameter(
                    kwarg,
                    OpenApiTypes.STR,
                    OpenApiParameter.PATH,
                    description=self.view.lookup_description(),
                )
            )
        return parameters


class NaturalKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """List, read, create and update an organization's rows; no delete (retire via status).

    A natural key already taken on create, or changed on update, answers 400
    with the field named (409 is not used: the request is what is wrong).

    Subclasses set ``model``, ``natural_key`` (model fields unique within an
    organization, immutable once created), ``lookup_field`` (the one matched
    against the URL), ``lookup_url_kwarg`` (its public name), the output
    ``serializer_class`` and ``input_serializer_class``, and implement
    ``get_base_queryset``, ``create_object`` and ``update_object``.
    """

    model: ClassVar[type[models.Model]]
    natural_key: ClassVar[tuple[str, ...]]
    input_serializer_class: ClassVar[type[serializers.Serializer]]
    lookup_hint: ClassVar[str] = "the numeric id"
    lookup_note: ClassVar[str] = ""
    ordering_map: ClassVar[dict[str, str]] = {}

    lookup_value_regex = "[^/]+"
    filter_backends = [DjangoFilterBackend, filters.SearchFilter, MappedOrderingFilter]
    schema = NaturalKeySchema()

    @property
    def permission_model(self) -> type[models.Model]:
        return self.model

    @classmethod
    def lookup_description(cls) -> str:
        description = LOOKUP_DESCRIPTION.format(natural=cls.lookup_url_kwarg)
        return f"{description} {cls.lookup_note}".strip()

    # --- reads ---------------------------------------------------------------

    def get_base_queryset(self, *, organization) -> models.QuerySet:
        """The organization's rows, from the app's selector (each subclass names it)."""
        raise ImproperlyConfigured(f"{type(self).__name__} must define get_base_queryset().")

    def get_queryset(self) -> models.QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        organization = request_organization(self.request)
        # scope_queryset again on top of the selector: a selector that forgets
        # its organization filter must not leak another tenant's rows.
        return scope_queryset(self.get_base_queryset(organization=organization), organization)

    def get_object(self) -> models.Model:
        """The row whose natural key is the URL value, else (all digits) the row with that id."""
        queryset = self.filter_queryset(self.get_queryset())
        value = self.kwargs[self.lookup_url_kwarg]
        if "\x00" in value:
            raise Http404
        matches = list(queryset.filter(**{self.lookup_field: value})[:2])
        if not matches and DIGITS.fullmatch(value) and int(value) <= PK_MAX:
            matches = list(queryset.filter(pk=int(value))[:1])
        if not matches:
            raise Http404
        if len(matches) > 1:
            count = queryset.filter(**{self.lookup_field: value}).count()
            raise exceptions.ValidationError(
                {
                    self.lookup_url_kwarg: [
                        LOOKUP_AMBIGUOUS.format(value=value, count=count, hint=self.lookup_hint)
                    ]
                }
            )
        self.check_object_permissions(self.request, matches[0])
        return matches[0]

    # --- writes --------------------------------------------------------------

    def create_object(self, *, organization, data: dict[str, Any]) -> models.Model:
        """Create through the app's service (each subclass names it)."""
        raise ImproperlyConfigured(f"{type(self).__name__} must define create_object().")

    def update_object(self, *, instance: models.Model, data: dict[str, Any]) -> models.Model:
        """Update through the app's service (each subclass names it)."""
        raise ImproperlyConfigured(f"{type(self).__name__} must define update_object().")

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["organization"] = (
            None
            if getattr(self, "swagger_fake_view", False)
            else request_organization(self.request)
        )
        return context

    def get_input_serializer(self, *args, **kwargs) -> serializers.Serializer:
        kwargs.setdefault("context", self.get_serializer_context())
        return self.input_serializer_class(*args, **kwargs)

    def create(self, request, *args, **kwargs) -> Response:
        serializer = self.get_input_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        organization = request_organization(request)
        self._refuse_taken_natural_key(data)
        with self._service_errors(serializer), self._duplicate_as_invalid(serializer, data):
            instance = self.create_object(organization=organization, data=data)
        return Response(self._output(instance), status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs) -> Response:
        instance = self.get_object()
        serializer = self.get_input_serializer(
            instance, data=request.data, partial=kwargs.get("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        self._refuse_natural_key_change(serializer, instance, data)
        for field in self.natural_key:
            data.pop(field, None)
        with self._service_errors(serializer):
            instance = self.update_object(instance=instance, data=data)
        return Response(self._output(instance))

    def partial_update(self, request, *args, **kwargs) -> Response:
        return self.update(request, *args, partial=True, **kwargs)

    # --- helpers -------------------------------------------------------------

    def _output(self, instance: models.Model) -> dict[str, Any]:
        # Re-read through the queryset so annotations (e.g. the current plan) are present.
        return self.get_serializer(self.get_queryset().get(pk=instance.pk)).data

    @staticmethod
    def _public_names(serializer: serializers.Serializer) -> dict[str, str]:
        """Model field name → API field name (``external_id`` → ``customer_id``)."""
        return {field.source: name for name, field in serializer.fields.items()}

    def _natural_key_error(self, serializer, data) -> exceptions.ValidationError:
        public = self._public_names(serializer)
        identity = " and ".join(
            f"{public.get(field, field)} {data[field]!r}" for field in self.natural_key
        )
        message = NATURAL_KEY_TAKEN.format(label=self.model._meta.verbose_name, identity=identity)
        return exceptions.ValidationError({public.get(self.lookup_field): [message]})

    def _refuse_natural_key_change(self, serializer, instance, data) -> None:
        public = self._public_names(serializer)
        changed = [f for f in self.natural_key if f in data and data[f] != getattr(instance, f)]
        if changed:
            raise exceptions.ValidationError(
                {
                    public.get(f, f): [NATURAL_KEY_IMMUTABLE.format(name=public.get(f, f))]
                    for f in changed
                }
            )

    def _refuse_taken_natural_key(self, data: dict[str, Any]) -> None:
        lookup = {field: data[field] for field in self.natural_key}
        if self.get_queryset().filter(**lookup).exists():
            raise self._natural_key_error(self.get_input_serializer(), data)

    @contextmanager
    def _duplicate_as_invalid(self, serializer, data):
        """A concurrent create of the same natural key is a 400, not a 500."""
        try:
            yield
        except IntegrityError as exc:
            constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
            natural = {"organization", *self.natural_key}
            unique = {
                c.name
                for c in self.model._meta.constraints
                if isinstance(c, models.UniqueConstraint) and set(c.fields) == natural
            }
            if constraint not in unique:
                raise
            raise self._natural_key_error(serializer, data) from exc

    @contextmanager
    def _service_errors(self, serializer):
        """Report a service's ValidationError under the API's field names."""
        try:
            yield
        except DjangoValidationError as exc:
            if not hasattr(exc, "error_dict"):
                raise exceptions.ValidationError({"non_field_errors": exc.messages}) from exc
            public = self._public_names(serializer)
            raise exceptions.ValidationError(
                {
                    "non_field_errors" if name == "__all__" else public.get(name, name): messages
                    for name, messages in exc.message_dict.items()
                }
            ) from exc


class OrganizationScopedViewSet(viewsets.GenericViewSet):
    """A viewset over an organization's rows, scoped like every other API view.

    Subclasses add the mixins they serve (list, retrieve), set ``model`` and
    implement ``get_base_queryset`` (a selector).
    """

    model: ClassVar[type[models.Model]]
    lookup_value_regex = "[^/]+"
    filter_backends = [DjangoFilterBackend, MappedOrderingFilter]

    @property
    def permission_model(self) -> type[models.Model]:
        return self.model

    def get_base_queryset(self, *, organization) -> models.QuerySet:
        """The organization's rows, from the app's selector (each subclass names it)."""
        raise ImproperlyConfigured(f"{type(self).__name__} must define get_base_queryset().")

    def get_queryset(self) -> models.QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        organization = request_organization(self.request)
        return scope_queryset(self.get_base_queryset(organization=organization), organization)
