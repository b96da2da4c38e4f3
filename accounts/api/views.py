"""The catalog API: customers, plans, features and provider keys of the caller's organization.

No resource can be deleted (the ledger references them): retire rows via ``status``
(DELETE answers 405). A duplicate natural key on create answers 400.
"""

from __future__ import annotations

from accounts import selectors, services
from accounts.api import filters, serializers
from accounts.models import Customer, Feature, Plan, ProviderKey
from metron.api.viewsets import NaturalKeyViewSet


class CustomerViewSet(NaturalKeyViewSet):
    """Customers (paying accounts) and their current plan.

    `{customer_id}` matches the customer id first; if no customer has that id and
    the value is all digits, it matches Metron's numeric `id`. Setting `plan` to
    a different plan code opens a new plan period from `plan_from` (default now).
    """

    model = Customer
    natural_key = ("external_id",)
    lookup_field = "external_id"
    lookup_url_kwarg = "customer_id"
    serializer_class = serializers.CustomerOutputSerializer
    input_serializer_class = serializers.CustomerInputSerializer
    filterset_class = filters.CustomerFilter
    search_fields = ["external_id", "name", "stripe_customer_id"]
    ordering_fields = ["name", "customer_id", "started_on", "created_at"]
    ordering_map = {"customer_id": "external_id"}

    def get_base_queryset(self, *, organization):
        return selectors.customer_annotate_current_plan(
            queryset=selectors.customer_list(organization=organization)
        )

    def create_object(self, *, organization, data):
        return services.customer_create(organization=organization, **data)

    def update_object(self, *, instance, data):
        return services.customer_update(customer=instance, **data)


class PlanViewSet(NaturalKeyViewSet):
    """Price plans.

    `{code}` matches the plan code first; if no plan has that code and the value
    is all digits, it matches Metron's numeric `id`.
    """

    model = Plan
    natural_key = ("code",)
    lookup_field = "code"
    lookup_url_kwarg = "code"
    serializer_class = serializers.PlanOutputSerializer
    input_serializer_class = serializers.PlanInputSerializer
    filterset_class = filters.PlanFilter
    search_fields = ["code", "name"]
    ordering_fields = ["price", "name", "code", "created_at"]

    def get_base_queryset(self, *, organization):
        return selectors.plan_list(organization=organization)

    def create_object(self, *, organization, data):
        return services.plan_create(organization=organization, **data)

    def update_object(self, *, instance, data):
        return services.plan_update(plan=instance, **data)


class FeatureViewSet(NaturalKeyViewSet):
    """Product features usage is attributed to.

    `{key}` matches the feature key first; if no feature has that key and the
    value is all digits, it matches Metron's numeric `id`.
    """

    model = Feature
    natural_key = ("key",)
    lookup_field = "key"
    lookup_url_kwarg = "key"
    serializer_class = serializers.FeatureOutputSerializer
    input_serializer_class = serializers.FeatureInputSerializer
    filterset_class = filters.FeatureFilter
    search_fields = ["key", "name", "team"]
    ordering_fields = ["name", "key", "launched_on", "created_at"]

    def get_base_queryset(self, *, organization):
        return selectors.feature_list(organization=organization)

    def create_object(self, *, organization, data):
        return services.feature_create(organization=organization, **data)

    def update_object(self, *, instance, data):
        return services.feature_update(feature=instance, **data)


class ProviderKeyViewSet(NaturalKeyViewSet):
    """Provider API keys (by the provider's key id, never the secret) mapped to features.

    `{key_id}` matches the provider's key id first; if no key has that id and the
    value is all digits, it matches Metron's numeric `id`. A key id registered for
    two providers answers 400 until `?provider=` picks one.
    """

    model = ProviderKey
    natural_key = ("provider", "key_id")
    lookup_field = "key_id"
    lookup_url_kwarg = "key_id"
    lookup_hint = "?provider="
    lookup_note = "If that key id exists for several providers, add `?provider=`."
    serializer_class = serializers.ProviderKeyOutputSerializer
    input_serializer_class = serializers.ProviderKeyInputSerializer
    filterset_class = filters.ProviderKeyFilter
    search_fields = ["key_id", "label", "team", "feature__key"]
    ordering_fields = ["provider", "label", "key_id", "last_seen_at", "created_at"]

    def get_base_queryset(self, *, organization):
        return selectors.provider_key_list(organization=organization)

    def create_object(self, *, organization, data):
        return services.provider_key_create(organization=organization, **data)

    def update_object(self, *, instance, data):
        return services.provider_key_update(provider_key=instance, **data)
