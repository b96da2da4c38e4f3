"""Provider usage objects → ledger token counts (OpenAI convention)."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from ingestion.normalize import UsageShapeError, usage_from_provider
from ingestion.pricing import TokenUsage


def test_openai_chat_completions():
    raw = {
        "prompt_tokens": 6074,
        "completion_tokens": 285,
        "total_tokens": 6359,
        "prompt_tokens_details": {"cached_tokens": 3456, "cache_write_tokens": 1000,
                                  "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 64, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }  # fmt: skip
    assert usage_from_provider("openai", raw) == TokenUsage(
        input_tokens=6074, output_tokens=285, cached_input_tokens=3456,
        cache_write_tokens=1000, reasoning_tokens=64,
    )  # fmt: skip


def test_openai_responses():
    raw = {
        "input_tokens": 2000,
        "output_tokens": 900,
        "total_tokens": 2900,
        "input_tokens_details": {"cached_tokens": 1500, "cache_write_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 600},
    }
    assert usage_from_provider("openai", raw) == TokenUsage(2000, 900, 1500, 0, 600)


def test_azure_uses_the_openai_shapes():
    raw = {"prompt_tokens": 10, "completion_tokens": 5}
    assert usage_from_provider("Azure", raw) == TokenUsage(10, 5)


def test_anthropic_messages_input_excludes_cache_reads_and_writes():
    raw = {
        "input_tokens": 1000,
        "cache_creation_input_tokens": 2000,
        "cache_read_input_tokens": 3000,
        "output_tokens": 500,
        "output_tokens_details": {"thinking_tokens": 200},
        "server_tool_use": {"web_search_requests": 1},
        "service_tier": "standard",
    }
    # total input = 1000 + 2000 + 3000
    assert usage_from_provider("anthropic", raw) == TokenUsage(6000, 500, 3000, 2000, 200)


def test_anthropic_cache_creation_split_by_ttl():
    raw = {
        "input_tokens": 10,
        "output_tokens": 1,
        "cache_creation": {"ephemeral_5m_input_tokens": 300, "ephemeral_1h_input_tokens": 200},
    }
    assert usage_from_provider("anthropic", raw) == TokenUsage(
        input_tokens=510, output_tokens=1, cache_write_tokens=500
    )


def test_anthropic_openai_compatible_endpoint_uses_the_chat_shape():
    raw = {"prompt_tokens": 100, "completion_tokens": 7,
           "prompt_tokens_details": {"cached_tokens": 40}}  # fmt: skip
    assert usage_from_provider("anthropic", raw) == TokenUsage(100, 7, cached_input_tokens=40)


def test_missing_details_and_nulls_are_zero():
    assert usage_from_provider("openai", {"prompt_tokens": 10, "completion_tokens": 2}) == (
        TokenUsage(10, 2)
    )
    raw = {
        "prompt_tokens": 10,
        "completion_tokens": None,
        "prompt_tokens_details": None,
        "completion_tokens_details": {"reasoning_tokens": None},
    }
    assert usage_from_provider("openai", raw) == TokenUsage(10, 0)
    anthropic = {
        "input_tokens": 10,
        "output_tokens": 3,
        "cache_creation_input_tokens": None,
        "cache_read_input_tokens": None,
        "cache_creation": None,
        "output_tokens_details": None,
    }
    assert usage_from_provider("anthropic", anthropic) == TokenUsage(10, 3)


def test_json_decoded_with_decimal_floats():
    raw = json.loads('{"input_tokens": 12.0, "output_tokens": 3}', parse_float=Decimal)
    assert usage_from_provider("openai", raw) == TokenUsage(12, 3)


CHAT = {"prompt_tokens": 10, "completion_tokens": 1}


@pytest.mark.parametrize(
    ("provider", "raw", "message"),
    [
        (
            "openai",
            {"prompt_tokens": 10},
            "openai usage: missing required field 'completion_tokens'",
        ),
        ("openai", {"input_tokens": 10}, "openai usage: missing required field 'output_tokens'"),
        (
            "anthropic",
            {"output_tokens": 1},
            "anthropic usage: missing required field 'input_tokens'",
        ),
        (
            "openai",
            {"total_tokens": 10},
            "missing required field 'input_tokens' or 'prompt_tokens'",
        ),
        ("openai", {**CHAT, "prompt_tokens": "10"}, "'prompt_tokens' must be a number"),
        ("openai", {**CHAT, "prompt_tokens": True}, "'prompt_tokens' must be a number"),
        ("openai", {**CHAT, "prompt_tokens": -1}, "non-negative whole number"),
        ("openai", {**CHAT, "prompt_tokens": 1.5}, "non-negative whole number"),
        ("openai", {**CHAT, "prompt_tokens": float("nan")}, "non-negative whole number"),
        (
            "openai",
            {**CHAT, "prompt_tokens_details": 3},
            "'prompt_tokens_details' must be an object",
        ),
        (
            "openai",
            {**CHAT, "prompt_tokens_details": {"cached_tokens": "x"}},
            "'prompt_tokens_details.cached_tokens' must be a number",
        ),
        (
            "openai",
            {**CHAT, "prompt_tokens_details": {"cached_tokens": 11}},
            "openai usage: cached_input_tokens (11) + cache_write_tokens (0) exceed input_tokens",
        ),
        (
            "anthropic",
            {
                "input_tokens": 1,
                "output_tokens": 5,
                "output_tokens_details": {"thinking_tokens": 6},
            },
            "anthropic usage: reasoning_tokens (6) exceed output_tokens (5)",
        ),
        ("openai", [1, 2], "openai usage: expected an object, got list"),
        ("mistral", CHAT, "'mistral': no usage shape known"),
    ],
)
def test_unreadable_shapes_raise_a_named_error(provider, raw, message):
    with pytest.raises(UsageShapeError, match=re.escape(message)):
        usage_from_provider(provider, raw)


def test_usage_shape_error_is_a_value_error():
    with pytest.raises(ValueError):
        usage_from_provider("openai", {})
