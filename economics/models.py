"""Economics: the policy, incremental usage aggregates and period snapshots.

Three layers, each recomputable from the one below:

- **Day aggregates** (``UsageDay``, ``FeatureUserDay``, ``PromptVersionDay``): one day of the
  rollups at the economics grain, with the provider bill allocated where one exists. Rebuilt
  per day when ingestion marks the day changed.
- **Month aggregates** (``CustomerFeatureMonth``, ``CustomerModelMonth``, ``FeatureUserMonth``):
  kept equal to the sum of their days by adding the difference each day rebuild makes, so an
  update costs what the changed day holds, not what the month holds.
- **Snapshots** (``EconomicsSnapshot`` and its ``CustomerEconomics`` rows): the calculator's
  output for a calendar month or the rolling 30 days, with the time it is "as of".

Money is USD: ledger precision (12 places) in aggregates, cents in allocated amounts.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from economics.calculations import Band, OverheadRule, Profitability
from metron.money import cost_field, money_field
from metron.tenancy.models import OrganizationOwnedModel


def ratio_field(**kwargs) -> models.DecimalField:
    """A fraction of 1 (0.3 = 30 %), four places after the point of a percent."""
    return models.DecimalField(max_digits=12, decimal_places=6, **kwargs)


class EconomicsPolicy(OrganizationOwnedModel):
    """An organization's thresholds and overhead rules (DESIGN §7); finance edits them."""

    watch_threshold = ratio_field(
        default=Decimal("0.30"), validators=[MinValueValidator(0)],
        help_text="AI cost ÷ revenue at which an account leaves healthy (0.30 = 30 %).",
    )  # fmt: skip
    at_risk_threshold = ratio_field(default=Decimal("0.40"), validators=[MinValueValidator(0)])
    margin_negative_threshold = ratio_field(
        default=Decimal("1.00"), validators=[MinValueValidator(0)]
    )
    underwater_threshold = ratio_field(
        default=Decimal("0.40"), validators=[MinValueValidator(0)],
        help_text="AI cost ÷ revenue at or above which an account is underwater.",
    )  # fmt: skip
    break_even_band = ratio_field(
        default=Decimal("0.05"), validators=[MinValueValidator(0)],
        help_text="Contribution margin within ± this share of revenue is break-even.",
    )  # fmt: skip
    tail_ratio = ratio_field(
        null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="An account is in its plan's tail when its AI cost ≥ this × the plan price. "
        "Empty: the underwater threshold.",
    )  # fmt: skip
    overhead_rule = models.CharField(
        max_length=10, choices=[(rule.value, rule.value.title()) for rule in OverheadRule],
        default=OverheadRule.REQUESTS.value,
        help_text="How monthly overhead is spread over customers.",
    )  # fmt: skip
    monthly_overhead = money_field(
        default=Decimal("0.00"), validators=[MinValueValidator(0)],
        help_text="Infrastructure and other overhead per month (reporting currency).",
    )  # fmt: skip
    use_reconciled_cost = models.BooleanField(
        default=True,
        help_text="Use the provider's invoiced cost, allocated by ledger cost, where it exists.",
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", editable=False,
    )  # fmt: skip

    class Meta:
        verbose_name_plural = "economics policies"
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="economics_policy_one_per_org"),
            models.CheckConstraint(
                condition=models.Q(watch_threshold__lt=models.F("at_risk_threshold"))
                & models.Q(at_risk_threshold__lt=models.F("margin_negative_threshold")),
                name="economics_policy_bands_ascend",
            ),
        ]

    def __str__(self) -> str:
        return "Economics policy"


class EconomicsPolicyChange(models.Model):
    """One edit of a policy: who, when, and each field's old and new value. Append-only."""

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    policy = models.ForeignKey(EconomicsPolicy, on_delete=models.CASCADE, related_name="changes")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)
    changes = models.JSONField(help_text='{"field": ["old", "new"], …}')

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"{', '.join(self.changes)} changed"


# --- aggregates ---------------------------------------------------------------------------


def _fk(model: str, **kwargs) -> models.ForeignKey:
    # Aggregates are projections rebuilt from the ledger: no constraints, no extra indexes.
    return models.ForeignKey(
        model, on_delete=models.DO_NOTHING, null=True, related_name="+", db_index=False,
        db_constraint=False, **kwargs,
    )  # fmt: skip


class UsageDay(models.Model):
    """One day of usage at (customer, plan, feature, provider, model, billable)."""

    id = models.BigAutoField(primary_key=True)
    organization = _fk("accounts.Organization")
    day = models.DateField()
    customer = _fk("accounts.Customer")
    plan = _fk("accounts.Plan")
    feature = _fk("accounts.Feature")
    provider = models.CharField(max_length=50)
    model = models.CharField(max_length=255)
    billable = models.BooleanField()
    requests = models.BigIntegerField()
    tokens = models.BigIntegerField()
    cost = cost_field(help_text="USD, the ledger's priced cost.")
    reconciled_cost = cost_field(
        help_text="USD: the invoiced cost allocated by ledger cost where a bill exists, "
        "else the ledger cost."
    )
    billed = models.BooleanField(help_text="A provider bill covers this cost.")
    unpriced_requests = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="usage_day_org_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.model}"


class MonthAggregate(models.Model):
    """Sums over the days of a calendar month (``month`` is its first day)."""

    id = models.BigAutoField(primary_key=True)
    organization = _fk("accounts.Organization")
    month = models.DateField()
    customer = _fk("accounts.Customer")
    plan = _fk("accounts.Plan")
    billable = models.BooleanField()
    requests = models.BigIntegerField()
    tokens = models.BigIntegerField()
    cost = cost_field()
    reconciled_cost = cost_field()
    billed_cost = cost_field(help_text="USD of reconciled_cost that a provider bill covers.")
    unpriced_requests = models.BigIntegerField()

    class Meta:
        abstract = True


class CustomerFeatureMonth(MonthAggregate):
    feature = _fk("accounts.Feature")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "month", "customer", "plan", "feature", "billable"],
                nulls_distinct=False, name="customer_feature_month_unique",
            )
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} feature {self.feature_id}"


class CustomerModelMonth(MonthAggregate):
    provider = models.CharField(max_length=50)
    model = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "month", "customer", "plan", "provider", "model",
                        "billable"],
                nulls_distinct=False, name="customer_model_month_unique",
            )
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.model}"


class FeatureUserDay(models.Model):
    """An end user active on a feature under a plan on one day (billable traffic)."""

    id = models.BigAutoField(primary_key=True)
    organization = _fk("accounts.Organization")
    day = models.DateField()
    feature = _fk("accounts.Feature")
    plan = _fk("accounts.Plan")
    user_id = models.CharField(max_length=255)
    requests = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="feature_user_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.user_id}"


class FeatureUserMonth(models.Model):
    """An end user active on a feature under a plan in a month, with its active-day count
    (the row goes when its last day does)."""

    id = models.BigAutoField(primary_key=True)
    organization = _fk("accounts.Organization")
    month = models.DateField()
    feature = _fk("accounts.Feature")
    plan = _fk("accounts.Plan")
    user_id = models.CharField(max_length=255)
    days = models.IntegerField()
    requests = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "month", "feature", "plan", "user_id"],
                nulls_distinct=False, name="feature_user_month_unique",
            )
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.user_id}"


class PromptVersionDay(models.Model):
    """Cost of a feature's prompt version on one day (billable traffic)."""

    id = models.BigAutoField(primary_key=True)
    organization = _fk("accounts.Organization")
    day = models.DateField()
    feature = _fk("accounts.Feature")
    prompt_version = models.CharField(max_length=255)
    requests = models.BigIntegerField()
    cost = cost_field()

    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="prompt_version_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.prompt_version}"


class AggregatedDay(models.Model):
    """When each day's aggregates were last rebuilt, with the day's totals (the trend)."""

    id = models.BigAutoField(primary_key=True)
    organization = _fk("accounts.Organization")
    day = models.DateField()
    rebuilt_at = models.DateTimeField()
    requests = models.BigIntegerField(default=0)
    cost = cost_field(default=0, help_text="USD, all ledger cost of the day.")
    reconciled_cost = cost_field(default=0)
    billable_cost = cost_field(default=0, help_text="USD, reconciled cost of billable traffic.")
    uninstrumented_cost = cost_field(
        default=0, help_text="USD of provider bills that no ledger event accounts for."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "day"], name="aggregated_day_unique")
        ]

    def __str__(self) -> str:
        return f"{self.day} aggregated"


# --- snapshots ----------------------------------------------------------------------------


class EconomicsSnapshot(OrganizationOwnedModel):
    """The calculator's figures for one period, as of a moment; the dashboards and API read it.

    Lists (features, plans, model margins, segments, cohorts, trend, prompt versions) are JSON with
    money as decimal strings; customers are rows (``CustomerEconomics``) to filter and sort.
    """

    class Kind(models.TextChoices):
        MONTH = "month", "Calendar month"
        ROLLING_30D = "rolling_30d", "Rolling 30 days"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    period_start = models.DateField()
    period_end = models.DateField(help_text="Exclusive.")
    as_of = models.DateTimeField(help_text="Inputs up to this moment are included.")
    stale_since = models.DateTimeField(
        null=True, blank=True, help_text="Set when an input changed after as_of."
    )
    duration_ms = models.IntegerField(default=0)
    policy = models.JSONField(help_text="The policy the figures were computed with.")
    summary = models.JSONField(default=dict)
    features = models.JSONField(default=list)
    plans = models.JSONField(default=list)
    model_margins = models.JSONField(default=list)
    segments = models.JSONField(default=dict)
    cohorts = models.JSONField(default=list)
    trend = models.JSONField(default=list)
    feature_trend = models.JSONField(
        default=dict, help_text="Each feature's cost per bucket of the trend (SNAPSHOTS.md)."
    )
    prompt_versions = models.JSONField(default=list)

    class Meta:
        ordering = ["-period_start", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind", "period_start"], name="economics_snapshot_unique"
            )
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.MONTH:
            return self.period_start.strftime("%B %Y")
        return f"30 days to {self.period_end}"

    @property
    def is_stale(self) -> bool:
        return self.stale_since is not None


class CustomerEconomics(models.Model):
    """One customer's figures in a snapshot (DESIGN §7), money in the reporting currency."""

    id = models.BigAutoField(primary_key=True)
    snapshot = models.ForeignKey(
        EconomicsSnapshot, on_delete=models.CASCADE, related_name="customers"
    )
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.CASCADE, related_name="economics"
    )
    plan = models.ForeignKey(
        "accounts.Plan", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    ai_cost = cost_field()
    provisional_cost = cost_field(help_text="USD of ai_cost no provider bill covers yet.")
    overhead = money_field()
    cost_to_serve = cost_field()
    revenue = money_field()
    cost_ratio = ratio_field(null=True, blank=True)
    contribution_margin = cost_field()
    contribution_margin_pct = ratio_field(null=True, blank=True)
    band = models.CharField(max_length=16, choices=[(b.value, b.value) for b in Band])
    underwater = models.BooleanField()
    profitability = models.CharField(
        max_length=12, choices=[(p.value, p.value) for p in Profitability]
    )
    requests = models.BigIntegerField(default=0)
    tokens = models.BigIntegerField(default=0)
    feature_costs = models.JSONField(
        default=list, help_text='[{"feature_id", "key", "name", "cost"}], costliest first.'
    )
    cost_change = cost_field(null=True, blank=True, help_text="vs the previous period.")
    margin_change = cost_field(null=True, blank=True)
    ratio_change = ratio_field(null=True, blank=True)

    class Meta:
        verbose_name_plural = "customer economics"
        ordering = ["-cost_ratio", "-ai_cost"]
        constraints = [
            models.UniqueConstraint(
                fields=["snapshot", "customer"], name="customer_economics_unique"
            )
        ]
        indexes = [
            models.Index(fields=["snapshot", "band"], name="customer_economics_band_idx"),
            models.Index(fields=["snapshot", "plan"], name="customer_economics_plan_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer} in {self.snapshot}"
