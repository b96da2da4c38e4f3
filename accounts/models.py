"""Organizations, staff and roles, and the catalog Metron attributes usage to:
customers (paying accounts) and their plan history, plans, features, provider
API keys, and the service keys other systems use to call Metron.
"""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from rest_framework_api_key.models import AbstractAPIKey

from metron.money import money_field
from metron.tenancy.models import OrganizationOwnedModel, TimeStampedModel

CUSTOMER_PLAN_OVERLAP = "This period overlaps another plan period of the same customer."
currency_validator = RegexValidator(r"^[A-Z]{3}$", "Use an ISO 4217 code such as USD.")


def validate_timezone(value: str) -> None:
    # A validator, not field choices: the list depends on the installed tz
    # database and must not leak into migrations.
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known IANA time zone (e.g. Europe/Paris).")


class Role(models.TextChoices):
    OPS = "ops", "Ops"
    FINANCE = "finance", "Finance"
    ENGINEERING = "engineering", "Engineering"
    ADMIN = "admin", "Admin"


class Environment(models.TextChoices):
    PRODUCTION = "production", "Production"
    STAGING = "staging", "Staging"
    DEVELOPMENT = "development", "Development"
    TEST = "test", "Test"


class Provider(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"
    OTHER = "other", "Other"


class User(AbstractUser):
    """A staff member. Access to data comes from organization memberships."""

    class Meta:
        ordering = ["username"]


class Organization(TimeStampedModel):
    """A tenant: a company whose AI economics Metron tracks."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    reporting_currency = models.CharField(
        max_length=3, default="USD", validators=[currency_validator]
    )
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    usage_accept_days = models.PositiveSmallIntegerField(
        "usage accept window (days)",
        default=35,
        validators=[MinValueValidator(1), MaxValueValidator(400)],
        help_text="Usage events older than this many days are rejected.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(TimeStampedModel):
    """A staff user's role in one organization; the role's group grants permissions."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices)

    class Meta:
        ordering = ["organization__name", "user__username"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"], name="membership_unique_user_organization"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()} at {self.organization}"


class Plan(OrganizationOwnedModel):
    """A price plan customers subscribe to (Free, Pro, …)."""

    class Interval(models.TextChoices):
        MONTH = "month", "Monthly"
        YEAR = "year", "Yearly"

    code = models.SlugField(max_length=64, help_text="Stable identifier used by the API.")
    name = models.CharField(max_length=200)
    price = money_field(help_text="List price per interval, in the plan's currency.")
    currency = models.CharField(max_length=3, default="USD", validators=[currency_validator])
    interval = models.CharField(max_length=10, choices=Interval.choices, default=Interval.MONTH)
    is_free = models.BooleanField("free tier", default=False)
    is_trial = models.BooleanField("trial", default=False)
    stripe_price_ids = ArrayField(
        models.CharField(max_length=255),
        default=list,
        blank=True,
        help_text="Stripe price ids (price_…) that map to this plan.",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["price", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="plan_unique_code"),
            models.CheckConstraint(condition=Q(price__gte=0), name="plan_price_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name


class Customer(OrganizationOwnedModel):
    """A paying account of the organization's product."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        TRIALING = "trialing", "Trialing"
        CHURNED = "churned", "Churned"

    external_id = models.CharField(
        "customer id",
        max_length=255,
        help_text="The id the product itself uses; usage events carry the same value.",
    )
    name = models.CharField(max_length=255)
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    segment = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    started_on = models.DateField(
        null=True, blank=True, help_text="Start of the relationship; defines the cohort."
    )
    is_internal = models.BooleanField(
        "internal / test",
        default=False,
        help_text="Internal and test accounts stay in the ledger but out of customer economics.",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    needs_review = models.BooleanField(
        default=False, help_text="Registered automatically from usage; ops should confirm it."
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "external_id"], name="customer_unique_external_id"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "stripe_customer_id"], name="customer_stripe_idx"),
        ]

    def __str__(self) -> str:
        return self.name or self.external_id


class CustomerPlan(OrganizationOwnedModel):
    """One period of a customer's plan history, half-open ``[valid_from, valid_to)``."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="plan_periods")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="customer_periods")
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True, help_text="Empty while in force.")

    class Meta:
        ordering = ["customer", "-valid_from"]
        verbose_name = "customer plan period"
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=models.F("valid_from")),
                name="customer_plan_period_ends_after_start",
            ),
            # At most one open-ended period per customer; overlaps of closed
            # periods are refused by the service, which locks the customer row.
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(valid_to__isnull=True),
                name="customer_plan_single_open_period",
            ),
        ]
        indexes = [models.Index(fields=["customer", "valid_from"], name="customer_plan_from_idx")]

    def __str__(self) -> str:
        end = self.valid_to.date().isoformat() if self.valid_to else "now"
        return f"{self.customer} on {self.plan} ({self.valid_from.date().isoformat()} → {end})"

    def clean(self) -> None:
        if not (self.plan_id and self.customer_id and self.valid_from):
            return
        if self.plan.organization_id != self.customer.organization_id:
            raise ValidationError({"plan": "The plan belongs to another organization."})
        overlapping = CustomerPlan.objects.filter(customer_id=self.customer_id).exclude(pk=self.pk)
        overlapping = overlapping.filter(Q(valid_to__isnull=True) | Q(valid_to__gt=self.valid_from))
        if self.valid_to is not None:
            overlapping = overlapping.filter(valid_from__lt=self.valid_to)
        if overlapping.exists():
            raise ValidationError(CUSTOMER_PLAN_OVERLAP)


class Feature(OrganizationOwnedModel):
    """A product feature usage is attributed to; ``key`` is the endpoint tag services send."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    key = models.SlugField(max_length=100, help_text="The tag services send, e.g. semantic-search.")
    name = models.CharField(max_length=200)
    team = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    launched_on = models.DateField(null=True, blank=True)
    needs_review = models.BooleanField(
        default=False, help_text="Registered automatically from usage; ops should confirm it."
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="feature_unique_key"),
        ]

    def __str__(self) -> str:
        return self.name or self.key


class ProviderKey(OrganizationOwnedModel):
    """Maps a provider API key (by its id, never the secret) to a feature and team."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REVOKED = "revoked", "Revoked"

    provider = models.CharField(max_length=20, choices=Provider.choices)
    key_id = models.CharField(
        "provider key id",
        max_length=255,
        help_text="The provider's id of the key (key_…, apikey_…), never the secret.",
    )
    label = models.CharField(max_length=200, blank=True)
    feature = models.ForeignKey(
        Feature, on_delete=models.PROTECT, null=True, blank=True, related_name="provider_keys"
    )
    team = models.CharField(max_length=100, blank=True)
    environment = models.CharField(
        max_length=20, choices=Environment.choices, default=Environment.PRODUCTION
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["provider", "label", "key_id"]
        verbose_name = "provider key"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "provider", "key_id"], name="provider_key_unique_key_id"
            ),
        ]

    def __str__(self) -> str:
        return self.label or self.key_id

    @property
    def is_mapped(self) -> bool:
        return self.feature_id is not None

    def clean(self) -> None:
        if (
            self.feature_id
            and self.organization_id
            and self.feature.organization_id != self.organization_id
        ):
            raise ValidationError({"feature": "The feature belongs to another organization."})


class ServiceAPIKey(AbstractAPIKey):
    """A key other services use to call Metron's API, bound to one organization.

    Only a hash is stored; the key is shown once at creation. Revocation is
    irreversible (enforced by ``AbstractAPIKey.clean``/``save``).
    """

    class Scope(models.TextChoices):
        INGEST = "ingest", "Ingest usage"
        READ = "read", "Read"
        WRITE = "write", "Write"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="service_keys", editable=False
    )
    scopes = ArrayField(models.CharField(max_length=10, choices=Scope.choices), default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "service API key"
        verbose_name_plural = "service API keys"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
