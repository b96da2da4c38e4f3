from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from accounts import services
from accounts.models import (
    Customer,
    CustomerPlan,
    Feature,
    Membership,
    Organization,
    Plan,
    ProviderKey,
    Role,
    User,
)

PASSWORD = "correct-horse-battery"


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Organization {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Role.ADMIN


class PlanFactory(DjangoModelFactory):
    class Meta:
        model = Plan

    organization = factory.SubFactory(OrganizationFactory)
    code = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.Sequence(lambda n: f"Plan {n}")
    price = Decimal("49.00")


class CustomerFactory(DjangoModelFactory):
    class Meta:
        model = Customer

    organization = factory.SubFactory(OrganizationFactory)
    external_id = factory.Sequence(lambda n: f"cust_{n:05d}")
    name = factory.Sequence(lambda n: f"Customer {n}")


class CustomerPlanFactory(DjangoModelFactory):
    class Meta:
        model = CustomerPlan

    customer = factory.SubFactory(CustomerFactory)
    organization = factory.SelfAttribute("customer.organization")
    plan = factory.SubFactory(PlanFactory, organization=factory.SelfAttribute("..organization"))
    valid_from = datetime(2026, 1, 1, tzinfo=UTC)


class FeatureFactory(DjangoModelFactory):
    class Meta:
        model = Feature

    organization = factory.SubFactory(OrganizationFactory)
    key = factory.Sequence(lambda n: f"feature-{n}")
    name = factory.Sequence(lambda n: f"Feature {n}")


class ProviderKeyFactory(DjangoModelFactory):
    class Meta:
        model = ProviderKey

    organization = factory.SubFactory(OrganizationFactory)
    provider = "openai"
    key_id = factory.Sequence(lambda n: f"key_{n:08d}")
    label = factory.Sequence(lambda n: f"Key {n}")
    feature = factory.SubFactory(
        FeatureFactory, organization=factory.SelfAttribute("..organization")
    )


def service_key(organization: Organization, scopes=("read",), **kwargs):
    """A service key and its plaintext, created the way production creates them."""
    return services.service_key_create(
        organization=organization, name=kwargs.pop("name", "test key"), scopes=scopes, **kwargs
    )
