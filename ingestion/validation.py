"""Validation of usage events as other services send them (pure, no database).

Hand-written rather than a serializer per event: the ingest API validates up to
1,000 events per request at tens of thousands of events per second. Every
rejection names the field and says what was expected.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import msgspec

from ingestion.normalize import usage_from_provider

MAX_BATCH = 1000
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_TOKENS = 2**53  # beyond any real call; keeps sums far inside bigint
MAX_COST = Decimal("1000000")  # USD per single call
_ONE = Decimal(1)
MAX_METADATA_KEYS = 50
MAX_METADATA_VALUE = 500
ENVIRONMENTS = frozenset({"production", "staging", "development", "test"})
STATUSES = frozenset({"success", "error"})
SOURCES = frozenset({"sdk", "proxy", "api"})
FEATURE_KEY = re.compile(r"^[-a-zA-Z0-9_]{1,100}$")

TEXT_FIELDS = {  # field → max length
    "event_id": 255, "customer_id": 255, "user_id": 255, "workflow": 255,
    "prompt_version": 255, "provider": 50, "model": 255, "api_key_id": 255,
    "service_tier": 50,
}  # fmt: skip
TOKEN_FIELDS = (
    "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens",
    "reasoning_tokens",
)  # fmt: skip
KNOWN_FIELDS = frozenset(
    {*TEXT_FIELDS, *TOKEN_FIELDS, "timestamp", "feature", "environment", "batch", "status",
     "attempt", "latency_ms", "quality_score", "billable", "cost_usd", "metadata", "source",
     "provider_usage"}
)  # fmt: skip


# One encoder for every hash: json.dumps with arguments builds a new one per call.
_CANONICAL_JSON = json.JSONEncoder(separators=(",", ":"))
_FAST_JSON = msgspec.json.Encoder()


class EventRejected(ValueError):
    """The event cannot be stored; ``str()`` is the reason returned to the caller."""


@dataclass(slots=True)
class ParsedEvent:
    """A valid event in the ledger's convention (OpenAI-style token totals)."""

    event_id: str
    timestamp: datetime
    provider: str
    model: str
    customer_id: str = ""
    user_id: str = ""
    feature: str = ""
    workflow: str = ""
    prompt_version: str = ""
    api_key_id: str = ""
    environment: str = "production"
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    batch: bool = False
    service_tier: str = ""
    status: str = "success"
    attempt: int = 1
    latency_ms: int | None = None
    quality_score: Decimal | None = None
    billable: bool | None = None
    cost_usd: Decimal | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    source: str = "api"

    def payload_hash(self) -> str:
        """SHA-256 of the event's content: equal for a retry, different for a conflict."""
        canonical = [
            self.event_id, self.timestamp.isoformat(), self.provider, self.model,
            self.customer_id, self.user_id, self.feature, self.workflow, self.prompt_version,
            self.api_key_id, self.environment, self.input_tokens, self.output_tokens,
            self.cached_input_tokens, self.cache_write_tokens, self.reasoning_tokens,
            self.batch, self.service_tier, self.status, self.attempt, self.latency_ms,
            None if self.quality_score is None else str(self.quality_score.normalize()),
            self.billable,
            None if self.cost_usd is None else str(self.cost_usd.normalize()),
            sorted(self.metadata.items()), self.source,
        ]  # fmt: skip
        encoded = _FAST_JSON.encode(canonical)
        # msgspec writes what json writes, byte for byte, unless a string needs an
        # escape (json escapes all but printable ASCII, DEL included): then json's own
        # encoding is hashed, so a hash never changes with the encoder that computed it.
        if b"\\" in encoded or b"\x7f" in encoded or not encoded.isascii():
            encoded = _CANONICAL_JSON.encode(canonical).encode()
        return hashlib.sha256(encoded).hexdigest()


def _text(raw: dict, name: str, *, required: bool = False) -> str:
    value = raw.get(name)
    if value is None or value == "":
        if required:
            raise EventRejected(f"{name} is required.")
        return ""
    if not isinstance(value, str):
        raise EventRejected(f"{name} must be a string.")
    if len(value) > TEXT_FIELDS[name]:
        raise EventRejected(f"{name} is longer than {TEXT_FIELDS[name]} characters.")
    if "\x00" in value:
        raise EventRejected(f"{name} contains a NUL character.")
    return value


def _int(raw: dict, name: str, *, default: int | None, minimum: int, maximum: int) -> int | None:
    value = raw.get(name)
    if value is None:
        return default
    # bool is an int in Python; JSON true is not a count.
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, Decimal) and value == value.to_integral_value():
            value = int(value)
        else:
            raise EventRejected(f"{name} must be a whole number.")
    if not minimum <= value <= maximum:
        raise EventRejected(f"{name} must be between {minimum} and {maximum}.")
    return value


def _bool(raw: dict, name: str, default: bool | None) -> bool | None:
    value = raw.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise EventRejected(f"{name} must be true or false.")
    return value


def _decimal(raw: dict, name: str, *, maximum: Decimal) -> Decimal | None:
    return _decimal_value(raw.get(name), name, maximum=maximum)


def _decimal_value(value: Any, name: str, *, maximum: Decimal) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise EventRejected(f"{name} must be a number.")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise EventRejected(f"{name} must be a number.") from None
    if not number.is_finite() or number < 0 or number > maximum:
        raise EventRejected(f"{name} must be between 0 and {maximum}.")
    return number


def _timestamp(raw: dict) -> datetime:
    return _timestamp_value(raw.get("timestamp"))


def _timestamp_value(value: Any) -> datetime:
    if not isinstance(value, str) or not value:
        raise EventRejected("timestamp is required as an ISO 8601 string.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise EventRejected("timestamp is not ISO 8601 (e.g. 2026-11-20T14:03:00Z).") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # documented: naive timestamps are UTC
    return parsed.astimezone(UTC)


def _metadata(raw: dict) -> dict[str, str]:
    return _metadata_value(raw.get("metadata"))


def _metadata_value(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EventRejected("metadata must be an object of strings.")
    if len(value) > MAX_METADATA_KEYS:
        raise EventRejected(f"metadata has more than {MAX_METADATA_KEYS} keys.")
    result = {}
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, (str, int, Decimal)):
            raise EventRejected(f"metadata.{key} must be a string.")
        text = str(item)
        if len(key) > 100 or len(text) > MAX_METADATA_VALUE or "\x00" in key + text:
            raise EventRejected(f"metadata.{key[:100]} is too long or contains NUL.")
        result[key] = text
    return result


def parse_event(raw: Any, *, now: datetime, accept_days: int) -> ParsedEvent:
    """Validate one raw event (JSON decoded with Decimal floats) or raise EventRejected.

    Enforces the accept window: at most ``accept_days`` old, at most five
    minutes ahead of ``now``.
    """
    if not isinstance(raw, dict):
        raise EventRejected("each event must be a JSON object.")
    unknown = raw.keys() - KNOWN_FIELDS
    if unknown:
        raise EventRejected(f"unknown field(s): {', '.join(sorted(map(str, unknown)))}.")

    timestamp = _timestamp(raw)
    if timestamp < now - timedelta(days=accept_days):
        raise EventRejected(f"timestamp is older than the {accept_days}-day accept window.")
    if timestamp > now + FUTURE_TOLERANCE:
        raise EventRejected("timestamp is more than 5 minutes in the future.")

    feature = raw.get("feature") or ""
    if feature and (not isinstance(feature, str) or not FEATURE_KEY.match(feature)):
        raise EventRejected("feature must be a tag of letters, digits, - and _ (max 100).")
    environment = raw.get("environment") or "production"
    if environment not in ENVIRONMENTS:
        raise EventRejected("environment must be production, staging, development or test.")
    status = raw.get("status") or "success"
    if status not in STATUSES:
        raise EventRejected("status must be success or error.")
    source = raw.get("source") or "api"
    if source not in SOURCES:
        raise EventRejected("source must be sdk, proxy or api.")

    event = ParsedEvent(
        event_id=_text(raw, "event_id", required=True),
        timestamp=timestamp,
        provider=_text(raw, "provider", required=True).lower(),
        model=_text(raw, "model", required=True),
        customer_id=_text(raw, "customer_id"),
        user_id=_text(raw, "user_id"),
        feature=feature,
        workflow=_text(raw, "workflow"),
        prompt_version=_text(raw, "prompt_version"),
        api_key_id=_text(raw, "api_key_id"),
        environment=environment,
        batch=_bool(raw, "batch", False),
        service_tier=_text(raw, "service_tier").lower(),
        status=status,
        attempt=_int(raw, "attempt", default=1, minimum=1, maximum=1000),
        latency_ms=_int(raw, "latency_ms", default=None, minimum=0, maximum=2**31 - 1),
        quality_score=_decimal(raw, "quality_score", maximum=_ONE),
        billable=_bool(raw, "billable", None),
        cost_usd=_decimal(raw, "cost_usd", maximum=MAX_COST),
        metadata=_metadata(raw),
        source=source,
    )
    if event.service_tier == "batch":  # Anthropic reports batch traffic as a service tier
        event.batch = True

    if raw.get("provider_usage") is not None:
        if any(raw.get(name) is not None for name in TOKEN_FIELDS):
            raise EventRejected("send either provider_usage or token fields, not both.")
        if not isinstance(raw["provider_usage"], dict):
            raise EventRejected("provider_usage must be the provider's usage object.")
        try:
            usage = usage_from_provider(event.provider, raw["provider_usage"])
        except ValueError as error:
            raise EventRejected(f"provider_usage: {error}") from None
        for name in TOKEN_FIELDS:
            setattr(event, name, getattr(usage, name))
    else:
        for name in TOKEN_FIELDS:
            setattr(event, name, _int(raw, name, default=0, minimum=0, maximum=MAX_TOKENS))

    if event.cached_input_tokens + event.cache_write_tokens > event.input_tokens:
        raise EventRejected(
            "cached_input_tokens + cache_write_tokens exceed input_tokens "
            "(input_tokens must include them, as OpenAI reports it)."
        )
    if event.reasoning_tokens > event.output_tokens:
        raise EventRejected("reasoning_tokens exceed output_tokens (output includes reasoning).")
    return event


# --- the batch fast path ----------------------------------------------------------------
# A batch is first validated as a whole by msgspec (types, lengths, bounds and unknown
# fields, in C: a fifth of ``parse_event``'s cost per event); what its schema cannot say
# (the accept window, the enumerations, NUL characters, subsets within totals) is
# checked below. Whenever either says no, the event goes through ``parse_event``, the
# one authority on what is accepted and on the reason of a rejection: the fast path
# only ever accepts what ``parse_event`` accepts, into an equal ``ParsedEvent``.


def _wire_text(length: int, required: bool = False):
    text = Annotated[str, msgspec.Meta(min_length=1 if required else 0, max_length=length)]
    return text if required else text | None


_Tokens = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)] | None


class WireEvent(msgspec.Struct, forbid_unknown_fields=True):
    """An event whose JSON types, lengths and bounds msgspec has checked (the fast path)."""

    event_id: _wire_text(TEXT_FIELDS["event_id"], required=True)
    timestamp: Annotated[str, msgspec.Meta(min_length=1)]
    provider: _wire_text(TEXT_FIELDS["provider"], required=True)
    model: _wire_text(TEXT_FIELDS["model"], required=True)
    customer_id: _wire_text(TEXT_FIELDS["customer_id"]) = None
    user_id: _wire_text(TEXT_FIELDS["user_id"]) = None
    feature: str | None = None
    workflow: _wire_text(TEXT_FIELDS["workflow"]) = None
    prompt_version: _wire_text(TEXT_FIELDS["prompt_version"]) = None
    api_key_id: _wire_text(TEXT_FIELDS["api_key_id"]) = None
    environment: str | None = None
    input_tokens: _Tokens = None
    output_tokens: _Tokens = None
    cached_input_tokens: _Tokens = None
    cache_write_tokens: _Tokens = None
    reasoning_tokens: _Tokens = None
    batch: bool | None = None
    service_tier: _wire_text(TEXT_FIELDS["service_tier"]) = None
    status: str | None = None
    attempt: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    latency_ms: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] | None = None
    quality_score: Any = None
    billable: bool | None = None
    cost_usd: Any = None
    metadata: Any = None
    source: str | None = None
    provider_usage: Any = None


_WIRE_LIST = list[WireEvent]


class WireBatch(msgspec.Struct, forbid_unknown_fields=True):
    """A request body ``{"events": [...]}`` decoded straight into checked events."""

    events: list[WireEvent]


_WIRE_DECODER = msgspec.json.Decoder(WireBatch, float_hook=Decimal)


def wire_batch_decode(body: bytes) -> WireBatch | None:
    """The body as a WireBatch, or None when any of it does not fit (decode it as plain JSON
    then: ``parse_events`` judges each event and says why one is rejected)."""
    try:
        return _WIRE_DECODER.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _wire_raw(wire: WireEvent) -> dict:
    # The event as it was sent: fields absent or null are alike to parse_event.
    return {
        name: value for name, value in msgspec.structs.asdict(wire).items() if value is not None
    }


def _fast(wire: WireEvent, oldest: datetime, newest: datetime) -> ParsedEvent | None:
    """``wire`` as a ParsedEvent, or None when ``parse_event`` must judge it."""
    texts = (
        wire.event_id, wire.provider, wire.model, wire.customer_id or "", wire.user_id or "",
        wire.workflow or "", wire.prompt_version or "", wire.api_key_id or "",
        wire.service_tier or "",
    )  # fmt: skip
    if wire.provider_usage is not None or "\x00" in "".join(texts):
        return None
    feature = wire.feature or ""
    environment = wire.environment or "production"
    status = wire.status or "success"
    source = wire.source or "api"
    if (
        (feature and not FEATURE_KEY.match(feature))
        or environment not in ENVIRONMENTS
        or status not in STATUSES
        or source not in SOURCES
    ):
        return None
    input_tokens = wire.input_tokens or 0
    output_tokens = wire.output_tokens or 0
    cached = wire.cached_input_tokens or 0
    written = wire.cache_write_tokens or 0
    reasoning = wire.reasoning_tokens or 0
    if cached + written > input_tokens or reasoning > output_tokens:
        return None
    try:
        timestamp = _timestamp_value(wire.timestamp)
        quality_score = _decimal_value(wire.quality_score, "quality_score", maximum=_ONE)
        cost_usd = _decimal_value(wire.cost_usd, "cost_usd", maximum=MAX_COST)
        metadata = _metadata_value(wire.metadata)
    except EventRejected:
        return None
    if not oldest <= timestamp <= newest:
        return None
    service_tier = (wire.service_tier or "").lower()
    return ParsedEvent(
        event_id=wire.event_id, timestamp=timestamp, provider=wire.provider.lower(),
        model=wire.model, customer_id=texts[3], user_id=texts[4], feature=feature,
        workflow=texts[5], prompt_version=texts[6], api_key_id=texts[7],
        environment=environment, input_tokens=input_tokens, output_tokens=output_tokens,
        cached_input_tokens=cached, cache_write_tokens=written, reasoning_tokens=reasoning,
        # Anthropic reports batch traffic as a service tier.
        batch=bool(wire.batch) or service_tier == "batch", service_tier=service_tier,
        status=status, attempt=1 if wire.attempt is None else wire.attempt,
        latency_ms=wire.latency_ms, quality_score=quality_score, billable=wire.billable,
        cost_usd=cost_usd, metadata=metadata, source=source,
    )  # fmt: skip


def parse_events(
    raws: list, *, now: datetime, accept_days: int
) -> list[ParsedEvent | EventRejected]:
    """Validate a batch: each event's ParsedEvent, or the EventRejected saying why not.

    ``raws`` holds decoded JSON events or WireEvents (``wire_batch_decode``). Same rules
    and results as ``parse_event`` applied to each, in less time.
    """
    oldest = now - timedelta(days=accept_days)
    newest = now + FUTURE_TOLERANCE
    wires: list = raws
    if not all(type(raw) is WireEvent for raw in raws):
        try:
            wires = msgspec.convert(raws, _WIRE_LIST)
        except msgspec.ValidationError:
            wires = [None] * len(raws)
    results: list[ParsedEvent | EventRejected] = []
    for wire, raw in zip(wires, raws, strict=True):
        event = None if wire is None else _fast(wire, oldest, newest)
        if event is None:
            if type(raw) is WireEvent:
                raw = _wire_raw(raw)
            try:
                event = parse_event(raw, now=now, accept_days=accept_days)
            except EventRejected as rejection:
                event = rejection
        results.append(event)
    return results
