"""Demo provider usage and bills, pulled through the real sync code from local fakes.

The fakes report what the demo ledger holds, plus what a real organization
would see: traffic on a key nobody instrumented (a nightly batch job), a day
where some events never reached Metron, and a model billed above list price.
The connections are then disabled, so scheduled syncs don't call a fake that
is gone; an ops person reconnects them with a real admin key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from accounts.models import Organization
from ingestion.fakes.anthropic import (
    anthropic_calls,
    anthropic_calls_from_ledger,
    start_anthropic_fake,
)
from ingestion.fakes.openai import openai_calls, openai_calls_from_ledger, start_openai_fake
from ingestion.models import ProviderConnection, SyncRun
from ingestion.services.providers.connections import provider_connection_upsert
from ingestion.services.providers.sync import provider_sync
from ingestion.services.reconciliation import reconciliation_run

DAYS = 30  # the reconciled window, ending yesterday
SEED = 20261101
# Keys that exist at the provider but send no events to Metron.
DARK_OPENAI_KEY = "key_Dk7Wq2Lm9Zx4Nc6V"
DARK_ANTHROPIC_KEY = "apikey_01Qh5Tn3Yb8Mv2Lc7Xs9Pe4Rk"


@dataclass
class ProviderSeedSummary:
    runs: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "provider sync from fixtures: " + "; ".join(self.runs)


def _sync(organization, provider, fake, base, summary, since):
    connection, _ = provider_connection_upsert(
        organization=organization, provider=provider, admin_key=fake.admin_key, api_base=base
    )
    for kind in (SyncRun.Kind.PROVIDER_USAGE, SyncRun.Kind.PROVIDER_COSTS):
        for run in provider_sync(connection=connection, kind=kind, since=since):
            summary.runs.append(f"{provider} {run.get_kind_display().lower()} {run.status} "
                                f"({run.items} rows)")  # fmt: skip
    ProviderConnection.objects.filter(pk=connection.pk).update(
        enabled=False,
        status_message="Demo: loaded from local fixtures. Enter a real admin key to sync.",
    )


def demo_seed(*, organization: Organization, now: datetime | None = None) -> ProviderSeedSummary:
    """Sync 30 days of provider usage and costs from fakes and reconcile them with the ledger."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    since, until = today - timedelta(days=DAYS), today
    end_day = until - timedelta(days=1)
    summary = ProviderSeedSummary()

    # Some events of one busy day never reached Metron: the provider saw more.
    missing_day = since + timedelta(days=DAYS // 2)
    openai = openai_calls_from_ledger(organization=organization, since=since, until=until)
    openai += openai_calls(key_ids=[DARK_OPENAI_KEY], models=["gpt-4.1-mini"], days=DAYS,
                           seed=SEED, end_day=end_day)  # fmt: skip
    openai += openai_calls(key_ids=["key_Hx4pQ9mT2vL8nR6w"], models=["gpt-4o"], days=1,
                           seed=SEED + 1, end_day=missing_day, calls_per_day=(40, 40))  # fmt: skip
    with start_openai_fake(
        key_ids=[], models=[], days=DAYS, seed=SEED, end_day=end_day, calls=openai,
        price_factors={"gpt-4.1": Decimal("1.04")},
    ) as fake:  # fmt: skip
        _sync(organization, "openai", fake, fake.url + "/v1", summary, since)

    anthropic = anthropic_calls_from_ledger(organization=organization, since=since, until=until)
    anthropic += anthropic_calls(key_ids=[DARK_ANTHROPIC_KEY], models=["claude-haiku-4-5"],
                                 days=DAYS, seed=SEED, end_day=end_day)  # fmt: skip
    with start_anthropic_fake(
        key_ids=[], models=[], days=DAYS, seed=SEED, end_day=end_day, calls=anthropic
    ) as fake:
        _sync(organization, "anthropic", fake, fake.url, summary, since)

    for provider in ("openai", "anthropic"):
        run = reconciliation_run(organization=organization, provider=provider, since=since,
                                 until=until)  # fmt: skip
        summary.runs.append(f"{provider} reconciliation {run.status} ({run.items} lines)")
    return summary
