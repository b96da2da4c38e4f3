"""Models of the ingestion app, one module per topic; import them from here."""

from ingestion.models.ledger import (
    ROLLUP_DIMENSIONS,
    AttributionSource,
    Confidence,
    CostSource,
    CostStatus,
    DailyUsage,
    EventConflict,
    PriceOverride,
    RepricingRun,
    UnreviewedCustomer,
    UnreviewedFeature,
    UsageChange,
    UsageEvent,
)
from ingestion.models.providers import *  # noqa: F403 - each module lists its models in __all__
from ingestion.models.revenue import *  # noqa: F403
from ingestion.models.stripe import *  # noqa: F403
from ingestion.models.sync import SyncRun

__all__ = [
    "ROLLUP_DIMENSIONS", "AttributionSource", "Confidence", "CostSource", "CostStatus",
    "DailyUsage", "EventConflict", "PriceOverride", "RepricingRun", "SyncRun",
    "UnreviewedCustomer", "UnreviewedFeature", "UsageChange", "UsageEvent",
]  # fmt: skip
