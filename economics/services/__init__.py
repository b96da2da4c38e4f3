"""Writes of the economics app (DESIGN §2: services own every write). Import from here."""

from economics.services.aggregates import (
    usage_day_rebuild,
    usage_days_refresh,
    usage_months_rebuild,
)
from economics.services.policy import economics_policy_update, economics_policy_validate
from economics.services.snapshots import (
    economics_recompute,
    economics_recompute_months,
    economics_refresh,
)

__all__ = [
    "economics_policy_update",
    "economics_policy_validate",
    "economics_recompute",
    "economics_recompute_months",
    "economics_refresh",
    "usage_day_rebuild",
    "usage_days_refresh",
    "usage_months_rebuild",
]
