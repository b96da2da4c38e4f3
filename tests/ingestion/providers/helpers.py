"""Ledger and sync set-up shared by the reconciliation tests."""

from __future__ import annotations

import math
import random
from collections import defaultdict

from ingestion.services.ingest import usage_events_ingest
from ingestion.services.providers.sync import COSTS, USAGE, provider_sync
from ingestion.validation import MAX_BATCH
from tests.ingestion.providers.conftest import first_day


def ingest(organization, events) -> None:
    events = list(events)
    for start in range(0, len(events), MAX_BATCH):
        result = usage_events_ingest(
            organization=organization, raw_events=events[start : start + MAX_BATCH]
        )
        assert result.accepted == len(events[start : start + MAX_BATCH]), result.outcomes[:3]


def drop_share(calls, *, day, model, share=0.05, seed=1):
    """The calls minus ``share`` of those of (day, model), chosen at random; and the dropped."""
    group = [c for c in calls if c.timestamp.date() == day and c.model == model]
    dropped = set(random.Random(seed).sample(range(len(group)), math.ceil(len(group) * share)))
    gone = {group[i].event_id for i in dropped}
    return [c for c in calls if c.event_id not in gone], [c for c in group if c.event_id in gone]


def tokens_by_day_model(calls):
    totals = defaultdict(int)
    for call in calls:
        totals[call.timestamp.date(), call.model] += call.input_tokens + call.output_tokens
    return totals


def sync_all(connection):
    for kind in (USAGE, COSTS):
        runs = provider_sync(connection=connection, kind=kind, since=first_day())
        assert [run.status for run in runs] == ["succeeded"], [run.error for run in runs]
