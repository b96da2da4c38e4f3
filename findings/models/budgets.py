"""Monthly budgets on the organization, a feature, a customer, a plan or a provider key."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from metron.money import money_field
from metron.tenancy.models import OrganizationOwnedModel


class BudgetState(models.TextChoices):
    OK = "ok", "OK"
    WARNING = "warning", "Warning"
    EXCEEDED = "exceeded", "Exceeded"


class Budget(OrganizationOwnedModel):
    """A monthly AI-cost limit on a scope; its state follows the month's spend."""

    class Scope(models.TextChoices):
        ORGANIZATION = "organization", "Organization"
        FEATURE = "feature", "Feature"
        CUSTOMER = "customer", "Customer"
        PLAN = "plan", "Plan"
        KEY = "key", "Provider key"

    name = models.CharField(max_length=200)
    scope = models.CharField(max_length=20, choices=Scope.choices)
    feature = models.ForeignKey(
        "accounts.Feature", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    plan = models.ForeignKey(
        "accounts.Plan", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    provider_key = models.ForeignKey(
        "accounts.ProviderKey", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    monthly_limit = money_field(validators=[MinValueValidator(Decimal("0.01"))], help_text="USD.")
    warning_percent = models.PositiveSmallIntegerField(
        default=80, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Warn when the month's spend reaches this % of the limit.",
    )  # fmt: skip
    active = models.BooleanField(default=True)
    state = models.CharField(max_length=10, choices=BudgetState.choices, default=BudgetState.OK)
    month = models.DateField(null=True, blank=True, help_text="First day of the month evaluated.")
    month_spend = money_field(default=Decimal("0.00"), help_text="USD spent this month so far.")
    evaluated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # Exactly the reference its scope names, and no other.
            models.CheckConstraint(
                condition=(
                    Q(scope="organization", feature__isnull=True, customer__isnull=True,
                      plan__isnull=True, provider_key__isnull=True)
                    | Q(scope="feature", feature__isnull=False, customer__isnull=True,
                        plan__isnull=True, provider_key__isnull=True)
                    | Q(scope="customer", feature__isnull=True, customer__isnull=False,
                        plan__isnull=True, provider_key__isnull=True)
                    | Q(scope="plan", feature__isnull=True, customer__isnull=True,
                        plan__isnull=False, provider_key__isnull=True)
                    | Q(scope="key", feature__isnull=True, customer__isnull=True,
                        plan__isnull=True, provider_key__isnull=False)
                ),
                name="budget_scope_reference",
            ),
        ]  # fmt: skip

    def __str__(self) -> str:
        return self.name


class BudgetTransition(OrganizationOwnedModel):
    """Append-only: a budget's state changed (ok → warning → exceeded, or back)."""

    budget = models.ForeignKey(Budget, on_delete=models.PROTECT, related_name="transitions")
    month = models.DateField(help_text="First day of the month.")
    from_state = models.CharField(max_length=10, choices=BudgetState.choices)
    to_state = models.CharField(max_length=10, choices=BudgetState.choices)
    spend = money_field(help_text="USD spent in the month when the state changed.")
    limit = money_field(help_text="USD limit at the time.")

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.budget}: {self.from_state} → {self.to_state}"
