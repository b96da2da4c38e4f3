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
    UsageEvent,
)
from ingestion.models.sync import SyncRun

__all__ = [
    "ROLLUP_DIMENSIONS", "AttributionSource", "Confidence", "CostSource", "CostStatus",
    "DailyUsage", "EventConflict", "PriceOverride", "RepricingRun", "SyncRun",
    "UnreviewedCustomer", "UnreviewedFeature", "UsageEvent",
]  # fmt: skip
