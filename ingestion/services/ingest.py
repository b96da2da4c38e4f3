"""Ingest of usage events into the ledger: validate, attribute, price, deduplicate, roll up.

One call handles one batch (up to 1,000 events) in one transaction with a fixed
number of queries, whatever the batch size: the dimension lookups, a binary
``COPY`` of all rows into a staging table, one statement that moves them into the
ledger (``ON CONFLICT DO NOTHING``) and adds the inserted ones to their rollups,
and one read of the rows that were already there.
"""

from __future__ import annotations

import json
import weakref
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec
import psycopg
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Customer, CustomerPlan, Feature, Organization
from ingestion.models import (
    AttributionSource,
    Confidence,
    CostSource,
    CostStatus,
    EventConflict,
    UsageChange,
    UsageEvent,
)
from ingestion.pricing import PriceBook, quantize_cost
from ingestion.services.providers.keys import provider_keys_register, provider_keys_touch
from ingestion.services.rollups import SOURCE_COLUMNS as ROLLUP_SOURCE_COLUMNS
from ingestion.services.rollups import rollups_add_sql, rollups_lock_shared
from ingestion.validation import MAX_BATCH, EventRejected, ParsedEvent, parse_events

ACCEPTED, DUPLICATE, CONFLICT, REJECTED = "accepted", "duplicate", "conflict", "rejected"
CONFLICT_REASON = "event_id already recorded with a different payload ({fields}); original kept."
BATCH_TOO_LARGE = f"A batch holds at most {MAX_BATCH} events."
COMPARED_FIELDS = (
    "timestamp", "provider", "model", "user_id", "workflow", "prompt_version", "api_key_id",
    "environment", "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens",
    "reasoning_tokens", "batch", "service_tier", "status", "attempt", "latency_ms",
    "quality_score", "metadata",
)  # fmt: skip


class EventOutcome(NamedTuple):
    """One event's outcome (a named tuple: one is made per event)."""

    event_id: str
    status: str
    reason: str = ""


@dataclass
class IngestResult:
    """Per-event outcomes in the order events were sent, and their counts."""

    outcomes: list[EventOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def accepted(self) -> int:
        return self.count(ACCEPTED)

    @property
    def duplicates(self) -> int:
        return self.count(DUPLICATE)

    @property
    def conflicts(self) -> int:
        return self.count(CONFLICT)

    @property
    def rejected(self) -> int:
        return self.count(REJECTED)


# --- dimensions -------------------------------------------------------------------


@dataclass
class Dimensions:
    """The catalog rows a batch refers to, resolved (and registered) in a few queries."""

    customers: dict[str, tuple[int, bool]]  # external id → (id, is_internal)
    features: dict[str, int]  # key → id
    keys: dict[tuple[str, str], tuple[int, int | None]]  # (provider, key id) → (id, feature)
    plan_periods: dict[int, tuple[list[datetime], list[tuple[datetime | None, int]]]]

    def plan_at(self, customer_id: int, at: datetime) -> int | None:
        """The customer's plan id in force at ``at`` (periods are half-open)."""
        periods = self.plan_periods.get(customer_id)
        if not periods:
            return None
        starts, rest = periods
        index = bisect_right(starts, at) - 1
        if index < 0:
            return None
        valid_to, plan_id = rest[index]
        return plan_id if valid_to is None or at < valid_to else None


def _fetch(sql: str, params: list) -> list[tuple]:
    # psycopg's own cursor on Django's connection (same transaction): one array
    # parameter and no ORM row handling, a fifth of the ORM's cost for a batch.
    # Client-side binding, like Django's: every query is planned for its values.
    connection.ensure_connection()
    with psycopg.ClientCursor(connection.connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


_CUSTOMERS = f"""
    SELECT external_id, id, is_internal FROM {Customer._meta.db_table}
    WHERE organization_id = %s AND external_id = ANY(%s)
"""
_FEATURES = f"""
    SELECT key, id FROM {Feature._meta.db_table} WHERE organization_id = %s AND key = ANY(%s)
"""


# The ids are bound as literals, as the ORM binds them: the planner then sees the values
# and takes the (organization, event_id) index even when the table's statistics are stale.
_STORED = f"""
    SELECT event_id, payload_hash FROM {UsageEvent._meta.db_table}
    WHERE organization_id = %s AND event_id = ANY(%s)
"""


def _register_customers(organization: Organization, external_ids: set[str]) -> dict:
    found = {
        ext: (pk, internal)
        for ext, pk, internal in _fetch(_CUSTOMERS, [organization.pk, list(external_ids)])
    }
    missing = external_ids - found.keys()
    if missing:
        # Nothing is lost: unknown customers are registered for ops to review.
        Customer.objects.bulk_create(
            [
                Customer(organization=organization, external_id=ext, name=ext, needs_review=True)
                for ext in sorted(missing)
            ],
            ignore_conflicts=True,
        )
        found.update(
            (ext, (pk, internal))
            for ext, pk, internal in _fetch(_CUSTOMERS, [organization.pk, list(missing)])
        )
    return found


def _register_features(organization: Organization, keys: set[str]) -> dict[str, int]:
    found = dict(_fetch(_FEATURES, [organization.pk, list(keys)]))
    missing = keys - found.keys()
    if missing:
        Feature.objects.bulk_create(
            [
                Feature(organization=organization, key=key, name=key, needs_review=True)
                for key in sorted(missing)
            ],
            ignore_conflicts=True,
        )
        found.update(_fetch(_FEATURES, [organization.pk, list(missing)]))
    return found


def _register_keys(organization: Organization, pairs: set[tuple[str, str]]) -> dict:
    """(provider, key id) → (ProviderKey pk, mapped feature pk); unknown keys registered
    unmapped, so spend on a key nobody claimed is surfaced to ops."""
    found = {}
    for provider in sorted({provider for provider, _ in pairs}):
        keys = provider_keys_register(
            organization=organization, provider=provider,
            key_ids=[key_id for p, key_id in pairs if p == provider],
        )  # fmt: skip
        found.update({(provider, key_id): value for key_id, value in keys.items()})
    return found


_PLAN_PERIODS = f"""
    SELECT customer_id, valid_from, valid_to, plan_id FROM {CustomerPlan._meta.db_table}
    WHERE customer_id = ANY(%s) ORDER BY customer_id, valid_from
"""


def _plan_periods(customer_ids: set[int]) -> dict:
    periods: dict[int, tuple[list, list]] = {}
    for customer_id, valid_from, valid_to, plan_id in _fetch(_PLAN_PERIODS, [list(customer_ids)]):
        starts, rest = periods.setdefault(customer_id, ([], []))
        starts.append(valid_from)
        rest.append((valid_to, plan_id))
    return periods


def dimensions_resolve(*, organization: Organization, events: Sequence[ParsedEvent]) -> Dimensions:
    """Look up (registering what is unknown) the customers, features and keys of a batch."""
    customers = _register_customers(organization, {e.customer_id for e in events if e.customer_id})
    return Dimensions(
        customers=customers,
        features=_register_features(organization, {e.feature for e in events if e.feature}),
        keys=_register_keys(
            organization, {(e.provider, e.api_key_id) for e in events if e.api_key_id}
        ),
        plan_periods=_plan_periods({pk for pk, _ in customers.values()}),
    )


# --- ledger rows --------------------------------------------------------------------

COLUMNS = (
    ("organization_id", "bigint"), ("event_id", "text"), ("timestamp", "timestamptz"),
    ("received_at", "timestamptz"), ("payload_hash", "text"), ("customer_id", "bigint"),
    ("plan_id", "bigint"), ("user_id", "text"), ("feature_id", "bigint"), ("workflow", "text"),
    ("prompt_version", "text"), ("provider", "text"), ("model", "text"),
    ("api_key_id", "text"), ("provider_key_id", "bigint"), ("environment", "text"),
    ("input_tokens", "bigint"), ("output_tokens", "bigint"), ("cached_input_tokens", "bigint"),
    ("cache_write_tokens", "bigint"), ("reasoning_tokens", "bigint"), ("batch", "boolean"),
    ("service_tier", "text"), ("status", "text"), ("attempt", "smallint"),
    ("latency_ms", "integer"), ("quality_score", "numeric"), ("billable", "boolean"),
    ("metadata", "jsonb"), ("cost", "numeric"), ("reported_cost", "numeric"),
    ("estimated_cost", "numeric"), ("cost_source", "text"), ("cost_status", "text"),
    ("price_reference", "text"), ("price_date", "date"), ("attribution_source", "text"),
    ("attribution_confidence", "text"),
)  # fmt: skip
# A batch is copied (binary COPY) into a per-session staging table, then one
# statement moves it into the ledger, skipping ids already stored, and adds the
# inserted rows to their rollups. COPY is what PostgreSQL loads fastest; binding
# 38 arrays to an INSERT cost three times as much (bench/ingest.py). jsonb is
# staged as text: the binary jsonb dumper would store a str as a JSON string.
STAGE = "ingest_stage"
_CREATE_STAGE = "CREATE TEMP TABLE IF NOT EXISTS {stage} ({columns}) ON COMMIT DELETE ROWS".format(
    stage=STAGE,
    columns=", ".join(f"{name} {'text' if kind == 'jsonb' else kind}" for name, kind in COLUMNS),
)
_COPY = "COPY {stage} ({columns}) FROM STDIN (FORMAT BINARY)".format(
    stage=STAGE, columns=", ".join(name for name, _ in COLUMNS)
)
# The database sessions (psycopg connections) whose staging table exists.
_STAGED_SESSIONS: weakref.WeakSet = weakref.WeakSet()
_STAGE_TYPES = ["text" if kind == "jsonb" else kind for _, kind in COLUMNS]
# The stage is emptied by the statement that reads it, so two batches in one
# transaction never mix; ON COMMIT DELETE ROWS then frees its space. The same
# statement marks the days it changed for the projections above the rollups.
_MOVE = """
    WITH staged AS (DELETE FROM {stage} RETURNING *),
    inserted AS (
        INSERT INTO {table} ({columns})
        SELECT {select} FROM staged ORDER BY event_id
        ON CONFLICT (organization_id, event_id) DO NOTHING
        RETURNING id, event_id, {returned}
    ),
    rolled_up AS ({rollups}),
    changed AS (
        INSERT INTO {changes} (organization_id, day)
        SELECT DISTINCT organization_id, (timestamp AT TIME ZONE 'UTC')::date FROM inserted
    )
    SELECT id, event_id FROM inserted
""".format(
    changes=UsageChange._meta.db_table,
    stage=STAGE,
    table=UsageEvent._meta.db_table,
    columns=", ".join(name for name, _ in COLUMNS),
    select=", ".join(f"{name}::jsonb" if kind == "jsonb" else name for name, kind in COLUMNS),
    rollups=rollups_add_sql("inserted"),
    returned=", ".join(ROLLUP_SOURCE_COLUMNS),
)


# Plain strings (not enum members), bound once: COPY dumps them as text as they are.
_HIGH, _MEDIUM, _LOW = Confidence.HIGH.value, Confidence.MEDIUM.value, Confidence.LOW.value
_KEY_MAPPING = AttributionSource.KEY_MAPPING.value
_UNATTRIBUTED = AttributionSource.UNATTRIBUTED.value
_PROVIDER_REPORTED = CostSource.PROVIDER_REPORTED.value
_PRICED, _UNPRICED = CostStatus.PRICED.value, CostStatus.UNPRICED.value
_METADATA_ENCODER = msgspec.json.Encoder()


def _metadata_json(metadata: dict[str, str]) -> str:
    return _METADATA_ENCODER.encode(metadata).decode() if metadata else "{}"


def event_row(
    *,
    organization_id: int,
    event: ParsedEvent,
    payload_hash: str,
    dims: Dimensions,
    prices: PriceBook,
    received_at: datetime,
) -> tuple:
    """The ledger row of one event: attribution, plan at event time, cost."""
    customer_id, internal = dims.customers.get(event.customer_id, (None, False))
    key_id, key_feature = dims.keys.get((event.provider, event.api_key_id), (None, None))

    # Explicit tags first, then the provider-key mapping, else unattributed.
    if event.feature:
        feature_id, attribution, confidence = (
            dims.features[event.feature],
            event.source,
            _HIGH,
        )
    elif key_feature is not None:
        feature_id, attribution, confidence = (
            key_feature,
            _KEY_MAPPING,
            _MEDIUM,
        )
    else:
        feature_id, attribution, confidence = (None, _UNATTRIBUTED, _LOW)

    billable = event.billable
    if billable is None:
        billable = event.environment == "production" and customer_id is not None and not internal

    # The parsed event carries validated token counts: it is priced as it is.
    quote = prices.quote(
        provider=event.provider, model=event.model, at=event.timestamp, usage=event,
        batch=event.batch, service_tier=event.service_tier,
    )  # fmt: skip
    estimate = quote.cost if quote else None
    reported = None if event.cost_usd is None else quantize_cost(event.cost_usd)
    if reported is not None:
        cost, source, status = reported, _PROVIDER_REPORTED, _PRICED
    elif quote is not None:
        cost, source, status = quote.cost, quote.source, _PRICED
    else:
        cost, source, status = None, "", _UNPRICED

    return (
        organization_id, event.event_id, event.timestamp, received_at, payload_hash,
        customer_id, dims.plan_at(customer_id, event.timestamp) if customer_id else None,
        event.user_id, feature_id, event.workflow, event.prompt_version, event.provider,
        event.model, event.api_key_id, key_id, event.environment, event.input_tokens,
        event.output_tokens, event.cached_input_tokens, event.cache_write_tokens,
        event.reasoning_tokens, event.batch, event.service_tier, event.status, event.attempt,
        event.latency_ms, event.quality_score, billable, _metadata_json(event.metadata), cost,
        reported, estimate,
        source, status, quote.reference if quote else "",
        quote.price_date if quote else event.timestamp.date(), attribution, confidence,
    )  # fmt: skip


def _insert_rows(rows: list[tuple]) -> dict[str, int]:
    """Insert ledger rows and add them to their rollups, skipping ids already stored;
    returns event id → new row id."""
    if not rows:
        return {}
    # A plain psycopg cursor on Django's connection (same transaction): Django's
    # cursor wrapper has no COPY.
    session = connection.connection
    with psycopg.Cursor(session) as cursor:
        if session not in _STAGED_SESSIONS:
            cursor.execute(_CREATE_STAGE)
            # The table exists for the session once this transaction commits (a
            # rollback takes the CREATE with it); a new connection is a new session.
            transaction.on_commit(lambda: _STAGED_SESSIONS.add(session))
        with cursor.copy(_COPY) as copy:
            copy.set_types(_STAGE_TYPES)
            for row in rows:
                copy.write_row(row)
        cursor.execute(_MOVE)
        return {event_id: pk for pk, event_id in cursor.fetchall()}


def _differing_fields(stored: UsageEvent, event: ParsedEvent) -> list[str]:
    differing = [name for name in COMPARED_FIELDS if getattr(stored, name) != getattr(event, name)]
    return differing or ["attribution or cost fields"]


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# --- the service ----------------------------------------------------------------------


def usage_events_ingest(
    *, organization: Organization, raw_events: Sequence[Any], now: datetime | None = None
) -> IngestResult:
    """Store a batch of raw usage events; every event gets an outcome, nothing is lost silently.

    Idempotent per (organization, event_id): a retry is a ``duplicate``, the
    same id with a different payload a ``conflict`` (recorded, original kept),
    an invalid or out-of-window event ``rejected`` with its reason. Unknown
    customers, features and provider keys are registered for review.
    """
    if len(raw_events) > MAX_BATCH:
        raise ValueError(BATCH_TOO_LARGE)
    now = now or timezone.now()
    outcomes: list[EventOutcome | None] = [None] * len(raw_events)
    parsed: list[tuple[int, ParsedEvent, str]] = []
    events = parse_events(list(raw_events), now=now, accept_days=organization.usage_accept_days)
    for index, (raw, event) in enumerate(zip(raw_events, events, strict=True)):
        if isinstance(event, EventRejected):
            event_id = (
                raw.get("event_id") if isinstance(raw, dict) else getattr(raw, "event_id", "")
            )
            outcomes[index] = EventOutcome(str(event_id or ""), REJECTED, str(event))
        else:
            parsed.append((index, event, event.payload_hash()))

    # The first occurrence of an id in the batch is the one inserted; later ones
    # are judged against what ends up stored, like any retry.
    first: dict[str, int] = {}
    for position, (_, event, _) in enumerate(parsed):
        first.setdefault(event.event_id, position)
    to_insert = sorted((parsed[p] for p in first.values()), key=lambda item: item[1].event_id)

    if parsed:
        with transaction.atomic():
            rollups_lock_shared(organization_id=organization.pk)
            events = [event for _, event, _ in to_insert]
            dims = dimensions_resolve(organization=organization, events=events)
            prices = PriceBook.for_organization(organization)
            rows = [
                event_row(organization_id=organization.pk, event=event, payload_hash=payload_hash,
                          dims=dims, prices=prices, received_at=now)
                for _, event, payload_hash in to_insert
            ]  # fmt: skip
            inserted = _insert_rows(rows)
            _judge_the_rest(organization, parsed, inserted, outcomes)
            _touch_keys(dims, to_insert)

    return IngestResult(outcomes=[outcome for outcome in outcomes if outcome is not None])


def _judge_the_rest(organization, parsed, inserted, outcomes) -> None:
    """Mark inserted events accepted; compare every other one with the stored row."""
    accepted = set()
    for index, event, _ in parsed:
        if event.event_id in inserted and event.event_id not in accepted:
            accepted.add(event.event_id)
            outcomes[index] = EventOutcome(event.event_id, ACCEPTED)
    others = [(i, e, h) for i, e, h in parsed if outcomes[i] is None]
    if not others:
        return
    stored = dict(_fetch(_STORED, [organization.pk, sorted({e.event_id for _, e, _ in others})]))
    conflicting = []
    for index, event, payload_hash in others:
        if stored.get(event.event_id) == payload_hash:
            outcomes[index] = EventOutcome(event.event_id, DUPLICATE)
        else:
            conflicting.append((index, event))
    if not conflicting:
        return
    originals = {
        row.event_id: row
        for row in UsageEvent.objects.filter(
            organization=organization, event_id__in={e.event_id for _, e in conflicting}
        )
    }
    records = []
    for index, event in conflicting:
        original = originals[event.event_id]
        fields = _differing_fields(original, event)
        outcomes[index] = EventOutcome(
            event.event_id, CONFLICT, CONFLICT_REASON.format(fields=", ".join(fields))
        )
        records.append(
            EventConflict(
                organization=organization, original=original, external_event_id=event.event_id,
                payload=_json_safe(_event_payload(event)), differing_fields=fields,
            )
        )  # fmt: skip
    EventConflict.objects.bulk_create(records)


def _event_payload(event: ParsedEvent) -> dict:
    return {name: getattr(event, name) for name in event.__slots__}


def _touch_keys(dims: Dimensions, events) -> None:
    """Record when each provider key was last seen in traffic."""
    last_seen: dict[int, datetime] = {}
    for _, event, _ in events:
        key = dims.keys.get((event.provider, event.api_key_id))
        if key is not None and (key[0] not in last_seen or event.timestamp > last_seen[key[0]]):
            last_seen[key[0]] = event.timestamp
    provider_keys_touch(last_seen=last_seen)


_DECIMAL_JSON = msgspec.json.Decoder(float_hook=Decimal)


def decimal_json_loads(body: bytes | str) -> Any:
    """Parse a request body keeping every JSON number with a fraction as an exact Decimal.

    Raises ValueError (with msgspec's description of where) on malformed JSON or UTF-8.
    """
    try:
        return _DECIMAL_JSON.decode(body)
    except msgspec.DecodeError as error:
        raise ValueError(str(error)) from None
