"""The one economics calculator: pure functions over aggregates (DESIGN §1, §7).

Actual economics feed these functions aggregates from the rollups; scenarios feed them
transformed aggregates; detectors read their outputs — so a figure is the same everywhere.
No Django, no I/O. Money is ``Decimal`` USD and is not rounded here except where money is
split (allocations hand out whole cents that sum exactly); ratios, shares and margin % are
``Decimal`` fractions of 1 (0.25 = 25 %). Bands are decided on the unrounded figures.
"""

from economics.calculations.allocation import (
    UNATTRIBUTED,
    ReconciledCosts,
    allocate,
    allocate_evenly,
    overhead_weight,
    reconciled_costs,
)
from economics.calculations.base import CENT, CONTEXT, ZERO, divide, share
from economics.calculations.cohorts import (
    Cohort,
    CohortPoint,
    CohortUsage,
    cohort_margins,
    month_start,
    months_since_start,
)
from economics.calculations.coverage import (
    CostAttribution,
    Coverage,
    attribution_coverage,
    coverage_share,
)
from economics.calculations.customers import (
    CustomerChange,
    CustomerEconomics,
    CustomerReport,
    CustomerSummary,
    CustomerTotals,
    CustomerUsage,
    FeatureCost,
    customer_economics,
    customer_row,
    customer_totals,
    top_accounts_by_cost_ratio,
    top_features,
)
from economics.calculations.features import (
    FeatureEconomics,
    FeatureUsage,
    PromptVersionCost,
    PromptVersionUsage,
    cost_by_prompt_version,
    feature_economics,
    feature_row,
    revenue_per_active_user,
)
from economics.calculations.plans import (
    PlanAccount,
    PlanEconomics,
    in_tail,
    monthly_price,
    plan_economics,
    plans_from_customers,
)
from economics.calculations.policy import (
    BANDS,
    DEFAULT_POLICY,
    Band,
    OverheadRule,
    Policy,
    Profitability,
    band,
    contribution_margin,
    cost_ratio,
    is_underwater,
    margin_pct,
    profitability,
)
from economics.calculations.segments import (
    UNALLOCATED,
    DimensionMargin,
    DimensionUsage,
    allocate_revenue,
    margin_by_dimension,
)
from economics.calculations.stats import mean, median, percentile, population_stddev
from economics.calculations.timeline import (
    Bucket,
    Granularity,
    TrendPoint,
    bucket_start,
    bucket_sums,
    buckets,
    granularity,
    margin_trend,
)

__all__ = [
    "BANDS", "CENT", "CONTEXT", "DEFAULT_POLICY", "UNALLOCATED", "UNATTRIBUTED", "ZERO",
    "Band", "Bucket", "Cohort", "CohortPoint", "CohortUsage", "CostAttribution", "Coverage",
    "CustomerChange", "CustomerEconomics", "CustomerReport", "CustomerSummary",
    "CustomerTotals", "CustomerUsage", "DimensionMargin", "DimensionUsage", "FeatureCost",
    "FeatureEconomics", "FeatureUsage", "Granularity", "OverheadRule", "PlanAccount",
    "PlanEconomics", "Policy", "Profitability", "PromptVersionCost", "PromptVersionUsage",
    "ReconciledCosts", "TrendPoint",
    "allocate", "allocate_evenly", "allocate_revenue", "attribution_coverage", "band",
    "bucket_start", "bucket_sums", "buckets", "cohort_margins", "contribution_margin",
    "cost_by_prompt_version", "cost_ratio", "coverage_share", "customer_economics",
    "customer_row", "customer_totals", "divide", "feature_economics", "feature_row",
    "granularity", "in_tail", "is_underwater", "margin_by_dimension", "margin_pct",
    "margin_trend", "mean", "median", "month_start", "monthly_price", "months_since_start",
    "overhead_weight", "percentile", "plan_economics", "plans_from_customers",
    "population_stddev", "profitability", "reconciled_costs", "revenue_per_active_user",
    "share", "top_accounts_by_cost_ratio", "top_features",
]  # fmt: skip
