"""One row of every provider-sync model an admin shows, for the admin smoke and tenancy tests.

``tests/admin_objects.py`` merges these into ``build_catalog`` (see the lead's snippet).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from ingestion.models import (
    ProviderConnection,
    ProviderCostLine,
    ProviderUsageBucket,
    ReconciliationLine,
    SyncRun,
)
from ingestion.services.providers.connections import provider_connection_upsert


def build_provider_objects(organization, marker: str) -> dict[type, object]:
    """A connection, a usage bucket, a cost line, a reconciliation line and a sync run;
    names and ids carry ``marker``."""
    connection, _ = provider_connection_upsert(
        organization=organization, provider="openai", admin_key=f"sk-admin-{marker}",
        api_base=f"http://127.0.0.1:9/{marker}",
    )  # fmt: skip
    day = datetime(2026, 11, 1, tzinfo=UTC)
    bucket = ProviderUsageBucket.objects.create(
        organization=organization, provider="openai", bucket_start=day, bucket_width="1d",
        project_id=f"proj_{marker}", api_key_id=f"{marker}-key", model=f"{marker}-model",
        requests=3, input_tokens=300, output_tokens=30, estimated_cost=Decimal("0.0012"),
    )  # fmt: skip
    line = ProviderCostLine.objects.create(
        organization=organization, provider="openai", day=day.date(),
        line_item=f"{marker}-model, input", model=f"{marker}-model", token_type="input",
        project_id=f"proj_{marker}", amount=Decimal("0.8958740000000000"),
    )  # fmt: skip
    reconciliation = ReconciliationLine.objects.create(
        organization=organization, provider="openai", day=day.date(), model=f"{marker}-model",
        ledger_cost=Decimal("1.00"), provider_usage_cost=Decimal("1.10"),
        invoiced_cost=Decimal("1.10"), variance=Decimal("0.10"),
        variance_percent=Decimal("9.0909"), tolerance_percent=Decimal("2.00"), flagged=True,
        reasons=["missing_events"], explanation=f"Missing events ({marker}).",
    )  # fmt: skip
    run = SyncRun.objects.create(
        organization=organization, kind=SyncRun.Kind.PROVIDER_USAGE, source="openai",
        status=SyncRun.Status.FAILED, pages=2, items=40, error=f"HTTP 500 ({marker})",
    )  # fmt: skip
    return {
        ProviderConnection: connection, ProviderUsageBucket: bucket, ProviderCostLine: line,
        ReconciliationLine: reconciliation, SyncRun: run,
    }  # fmt: skip
