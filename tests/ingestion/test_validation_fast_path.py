"""The batch fast path (``parse_events``) decides exactly as ``parse_event`` does.

``parse_event`` is the one authority on what is accepted and why not; the fast path
only saves time. Whatever events arrive, valid or not, both give equal results, and
the payload hash does not depend on which JSON encoder computed it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from ingestion.services.ingest import decimal_json_loads
from ingestion.validation import (
    EventRejected,
    ParsedEvent,
    parse_event,
    parse_events,
    wire_batch_decode,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

# Values near every rule's edge, plus the wrong types a caller might send.
texts = st.one_of(
    st.sampled_from(["", "a", "Cust-1", "x" * 255, "x" * 256, "ü-ß", "a\x00b", 'q"\\']),
    st.text(max_size=8),
)
counts = st.one_of(
    st.integers(-1, 5000), st.just(2**53), st.just(2**53 + 1), st.booleans(),
    st.sampled_from([Decimal("12"), Decimal("1.5"), "7"]), st.none(),
)  # fmt: skip
timestamps = st.one_of(
    st.integers(-36 * 24 * 60, 10).map(lambda m: (NOW + timedelta(minutes=m)).isoformat()),
    st.sampled_from(
        ["2026-11-20T11:00:00Z", "2026-11-20 11:00:00", "2026-11-20T11:00:00", "yesterday", "",
         "2026-11-20T11:00:00.1234567+02:00", "2026-10-16T12:00:00Z"]
    ),
    st.integers(),
)  # fmt: skip
decimals = st.one_of(
    st.none(), st.integers(-1, 2),
    st.sampled_from([Decimal("0.5"), Decimal("1.0001"), Decimal("NaN"), "0.25", "abc", True]),
)  # fmt: skip
metadata = st.one_of(
    st.none(), st.just("region"),
    st.dictionaries(st.sampled_from(["region", "k" * 101, "tier"]),
                    st.one_of(texts, st.integers(0, 9), st.booleans()), max_size=3),
)  # fmt: skip
optional = {
    "customer_id": texts, "user_id": texts, "workflow": texts, "prompt_version": texts,
    "api_key_id": texts, "service_tier": st.sampled_from(["", "batch", "Flex", "priority", 3]),
    "feature": st.sampled_from(["", "search", "bad tag", "x" * 101, 7]),
    "environment": st.sampled_from(["", "production", "staging", "prod", None]),
    "status": st.sampled_from(["", "success", "error", "ok"]),
    "source": st.sampled_from(["", "sdk", "proxy", "api", "web"]),
    "batch": st.one_of(st.booleans(), st.none(), st.just(1)),
    "billable": st.one_of(st.booleans(), st.none(), st.just("yes")),
    "attempt": counts, "latency_ms": counts, "input_tokens": counts, "output_tokens": counts,
    "cached_input_tokens": counts, "cache_write_tokens": counts, "reasoning_tokens": counts,
    "quality_score": decimals, "cost_usd": decimals, "metadata": metadata,
    "provider_usage": st.sampled_from([{"prompt_tokens": 10, "completion_tokens": 2}, "x"]),
    "unexpected": st.just(1),
}  # fmt: skip


@st.composite
def raw_events(draw):
    event = {
        "event_id": draw(texts),
        "timestamp": draw(timestamps),
        "provider": draw(st.sampled_from(["openai", "Anthropic", "", 5])),
        "model": draw(st.sampled_from(["gpt-4o", "claude-sonnet-4", ""])),
    }
    for name in draw(st.sets(st.sampled_from(sorted(optional)), max_size=8)):
        event[name] = draw(optional[name])
    for name in draw(st.sets(st.sampled_from(["event_id", "timestamp", "provider"]), max_size=1)):
        del event[name]
    return event


@st.composite
def valid_events(draw):
    """Events that are mostly valid: one field at most comes from the edge values above."""
    tokens = draw(st.integers(0, 10_000))
    cached = draw(st.integers(0, tokens))
    output = draw(st.integers(0, 5_000))
    event = {
        "event_id": draw(st.text("abc-1", min_size=1, max_size=10)),
        "timestamp": (NOW - timedelta(minutes=draw(st.integers(-4, 35 * 24 * 60)))).isoformat(),
        "provider": draw(st.sampled_from(["openai", "Anthropic"])),
        "model": "gpt-4o", "input_tokens": tokens, "cached_input_tokens": cached,
        "output_tokens": output, "reasoning_tokens": draw(st.integers(0, output)),
        "customer_id": draw(st.sampled_from(["", "c-1", None])),
        "feature": draw(st.sampled_from(["", "search", None])),
        "environment": draw(st.sampled_from(["production", "staging", "", None])),
        "batch": draw(st.one_of(st.booleans(), st.none())),
        "service_tier": draw(st.sampled_from(["", "batch", "Flex", None])),
        "quality_score": draw(st.sampled_from([None, Decimal("0.75"), 1, "0.5"])),
        "cost_usd": draw(st.sampled_from([None, Decimal("0.0123"), 0])),
        "metadata": draw(st.sampled_from([None, {}, {"region": "eu"}, {"n": 3}])),
        "attempt": draw(st.sampled_from([None, 1, 3])),
    }  # fmt: skip
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(optional)))
        event[name] = draw(optional[name])
    return event


def _outcome(result):
    if isinstance(result, EventRejected):
        return ("rejected", str(result))
    return ("parsed", result)


def _slow(raw):
    try:
        return _outcome(parse_event(raw, now=NOW, accept_days=35))
    except EventRejected as rejection:
        return _outcome(rejection)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(valid_events(), raw_events(), st.just("not an object")), min_size=1, max_size=6
    )
)
def test_fast_path_decides_as_parse_event(raws):
    assert [_outcome(r) for r in parse_events(raws, now=NOW, accept_days=35)] == [
        _slow(raw) for raw in raws
    ]


# Decimals as JSON numbers, as callers send them.
_BODY = msgspec.json.Encoder(decimal_format="number")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(valid_events(), raw_events(), st.just("not an object")), min_size=1, max_size=6
    )
)
def test_a_body_decoded_straight_into_wire_events_is_judged_as_its_json(raws):
    body = _BODY.encode({"events": raws})
    try:
        decoded = decimal_json_loads(body)["events"]
    except ValueError:  # e.g. NaN, which is not JSON: no path accepts it
        assert wire_batch_decode(body) is None
        return
    expected = [_slow(raw) for raw in decoded]
    batch = wire_batch_decode(body)
    if batch is not None:
        assert [_outcome(r) for r in parse_events(batch.events, now=NOW, accept_days=35)] == (
            expected
        )


def test_a_valid_batch_takes_the_fast_path_and_matches():
    raws = [
        {"event_id": f"e-{n}", "timestamp": "2026-11-20T11:00:00Z", "provider": "OpenAI",
         "model": "gpt-4o", "input_tokens": 100 + n, "output_tokens": 20,
         "cached_input_tokens": 50, "quality_score": Decimal("0.5"),
         "metadata": {"region": "eu"}, "service_tier": "Batch"}
        for n in range(3)
    ]  # fmt: skip
    parsed = parse_events(raws, now=NOW, accept_days=35)
    assert parsed == [parse_event(raw, now=NOW, accept_days=35) for raw in raws]
    assert all(isinstance(event, ParsedEvent) for event in parsed)
    assert parsed[0].provider == "openai" and parsed[0].batch is True
    batch = wire_batch_decode(_BODY.encode({"events": raws}))
    assert batch is not None
    assert parse_events(batch.events, now=NOW, accept_days=35) == parsed


def _json_hash(event: ParsedEvent) -> str:
    # The hash as it was always computed: stdlib json, ASCII escapes, compact separators.
    canonical = [
        event.event_id, event.timestamp.isoformat(), event.provider, event.model,
        event.customer_id, event.user_id, event.feature, event.workflow, event.prompt_version,
        event.api_key_id, event.environment, event.input_tokens, event.output_tokens,
        event.cached_input_tokens, event.cache_write_tokens, event.reasoning_tokens,
        event.batch, event.service_tier, event.status, event.attempt, event.latency_ms,
        None if event.quality_score is None else str(event.quality_score.normalize()),
        event.billable, None if event.cost_usd is None else str(event.cost_usd.normalize()),
        sorted(event.metadata.items()), event.source,
    ]  # fmt: skip
    return hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).hexdigest()


@settings(max_examples=300, deadline=None)
@given(
    # Printable ASCII, DEL and the rest: where json and msgspec escape differently.
    text=st.one_of(st.text(max_size=12), st.sampled_from(["\x7f", "a\x1fb", "é", "\\"])),
    meta=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    tokens=st.integers(0, 2**53),
    cost=st.one_of(st.none(), st.decimals(0, 1000, places=6)),
)
def test_payload_hash_is_the_json_hash_whatever_the_text(text, meta, tokens, cost):
    event = ParsedEvent(
        event_id=f"e{text}", timestamp=NOW, provider="openai", model=f"m{text}",
        customer_id=text, user_id=text, workflow=text, input_tokens=tokens,
        cost_usd=cost, metadata=meta,
    )  # fmt: skip
    assert event.payload_hash() == _json_hash(event)
