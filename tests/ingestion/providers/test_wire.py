"""Parsing the providers' bodies: exact Decimals, units, the ledger's token convention."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from ingestion.services.providers.clients import (
    cents_to_dollars,
    decimal_json,
    openai_line_item_parts,
    parse_anthropic_costs,
    parse_anthropic_usage,
    parse_openai_costs,
    parse_openai_usage,
)


def test_anthropic_cents_strings_are_exact_dollars():
    assert cents_to_dollars("123.4567") == Decimal("1.234567")
    assert cents_to_dollars("123.45") == Decimal("1.2345")
    assert cents_to_dollars("0.000001") == Decimal("0.00000001")
    assert cents_to_dollars("7") == Decimal("0.07")
    for bad in ("NaN", "Infinity", "", "12,5", None, True):
        with pytest.raises(ValueError):
            cents_to_dollars(bad)


def test_openai_cost_values_parse_exactly_not_through_float():
    body = decimal_json(
        '{"object":"page","has_more":false,"next_page":null,"data":[{"object":"bucket",'
        '"start_time":1730419200,"end_time":1730505600,"results":[{"object":'
        '"organization.costs.result","amount":{"value":0.8958740000000000,"currency":"usd"},'
        '"line_item":"gpt-4o-2024-08-06, input","project_id":"proj_abc","api_key_id":null},'
        '{"object":"organization.costs.result","amount":{"value":0.1,"currency":"usd"},'
        '"line_item":"web search tool calls","project_id":null,"api_key_id":null}]}]}'
    )

    page = parse_openai_costs(body)

    first, second = page.rows
    assert first.amount == Decimal("0.8958740000000000") == Decimal("0.895874")
    assert str(first.amount) == "0.8958740000000000"
    assert second.amount == Decimal("0.1")  # float would give 0.1000000000000000055…
    assert (first.model, first.token_type, first.currency, first.day) == (
        "gpt-4o-2024-08-06",
        "input",
        "USD",
        date(2024, 11, 1),
    )
    assert (second.model, second.project_id, second.api_key_id) == ("", "", "")
    assert page.covered_until == datetime(2024, 11, 2, tzinfo=UTC)


def test_openai_line_items_name_a_model_only_in_the_model_comma_kind_form():
    assert openai_line_item_parts("gpt-4o-mini, cached input") == ("gpt-4o-mini", "cached input")
    assert openai_line_item_parts("ft:gpt-4o:acme::x, output") == ("ft:gpt-4o:acme::x", "output")
    assert openai_line_item_parts("Web search tool calls") == ("", "")
    assert openai_line_item_parts("Image models, 1024x1024") == ("", "")


def test_openai_usage_keeps_input_totals_and_reads_cache_writes():
    page = parse_openai_usage(
        {
            "has_more": True,
            "next_page": "page_2",
            "data": [
                {
                    "start_time": 1730419200,
                    "end_time": 1730505600,
                    "results": [
                        {
                            "input_tokens": 1000,
                            "output_tokens": 50,
                            "num_model_requests": 3,
                            "input_cached_tokens": 400,
                            "input_cache_write_30m_tokens": 100,
                            "input_cache_write_12h_tokens": 20,
                            "model": "gpt-4o",
                            "batch": True,
                            "api_key_id": "key_1",
                            "project_id": None,
                            "service_tier": None,
                        }
                    ],
                }
            ],
        }
    )

    (row,) = page.rows
    assert (row.input_tokens, row.cached_input_tokens, row.cache_write_tokens) == (1000, 400, 120)
    assert (row.requests, row.batch, row.project_id, row.service_tier) == (3, True, "", "")
    assert (page.has_more, page.next_page) == (True, "page_2")


def test_anthropic_usage_sums_input_and_accepts_the_flat_cache_form():
    nested = {"uncached_input_tokens": 100, "cache_read_input_tokens": 2000,
              "cache_creation": {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 4},
              "output_tokens": 7, "model": "claude-sonnet-4-5", "service_tier": "batch",
              "workspace_id": None, "api_key_id": None,
              "server_tool_use": {"web_search_requests": 2}}  # fmt: skip
    flat = {"uncached_input_tokens": 100, "cache_read_input_tokens": 2000,
            "cache_creation_5m_input_tokens": 30, "cache_creation_1h_input_tokens": 4,
            "output_tokens": 7}  # fmt: skip
    body = {"has_more": False, "next_page": None, "data": [{
        "starting_at": "2026-11-01T00:00:00Z", "ending_at": "2026-11-02T00:00:00Z",
        "results": [nested, flat]}]}  # fmt: skip

    first, second = parse_anthropic_usage(body).rows

    assert (first.input_tokens, first.cached_input_tokens, first.cache_write_tokens) == (
        2134,
        2000,
        34,
    )
    assert (first.cache_write_1h_tokens, first.output_tokens, first.web_search_requests) == (
        4,
        7,
        2,
    )
    assert (first.batch, first.api_key_id, first.project_id) == (True, "", "")
    assert first.bucket_start == datetime(2026, 11, 1, tzinfo=UTC)
    assert (second.input_tokens, second.cache_write_tokens) == (2134, 34)


def test_anthropic_cost_report_rows():
    body = {"has_more": False, "next_page": None, "data": [{
        "starting_at": "2026-11-01T00:00:00Z", "ending_at": "2026-11-02T00:00:00Z",
        "results": [{"amount": "123.4567", "currency": "USD", "workspace_id": "wrkspc_1",
                     "description": "Claude Sonnet 4.5 Usage - Input Tokens",
                     "model": "claude-sonnet-4-5", "token_type": "uncached_input_tokens",
                     "cost_type": "tokens", "service_tier": "standard",
                     "context_window": "0-200k", "inference_geo": None}]}]}  # fmt: skip

    (row,) = parse_anthropic_costs(body).rows

    assert row.amount == Decimal("1.234567")
    assert (row.model, row.token_type, row.line_item, row.project_id) == (
        "claude-sonnet-4-5",
        "uncached_input_tokens",
        "Claude Sonnet 4.5 Usage - Input Tokens",
        "wrkspc_1",
    )
