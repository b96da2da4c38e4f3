"""Fakes of the providers' admin APIs on 127.0.0.1 and connections pointed at them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import ingestion.admin_providers  # noqa: F401 - registers the admins (the lead imports it in admin.py)
from ingestion.fakes.anthropic import start_anthropic_fake
from ingestion.fakes.openai import start_openai_fake
from ingestion.services.providers.connections import provider_connection_upsert

DAYS = 5
OPENAI_KEYS = ("key_chat", "key_search", "key_batch")
OPENAI_MODELS = ("gpt-4o", "gpt-4o-mini")
ANTHROPIC_KEYS = ("apikey_01chat", "apikey_02docs")
ANTHROPIC_MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5")
SEED = 4242


def first_day():
    """The fixture's first UTC day (fixtures end yesterday)."""
    return datetime.now(UTC).date() - timedelta(days=DAYS)


@pytest.fixture
def openai_fake():
    fake = start_openai_fake(key_ids=OPENAI_KEYS, models=OPENAI_MODELS, days=DAYS, seed=SEED)
    yield fake
    fake.stop()


@pytest.fixture
def anthropic_fake():
    fake = start_anthropic_fake(
        key_ids=ANTHROPIC_KEYS, models=ANTHROPIC_MODELS, days=DAYS, seed=SEED
    )
    yield fake
    fake.stop()


@pytest.fixture
def openai_connection(org, openai_fake):
    connection, _ = provider_connection_upsert(
        organization=org, provider="openai", admin_key=openai_fake.admin_key,
        api_base=f"{openai_fake.url}/v1",
    )  # fmt: skip
    return connection


@pytest.fixture
def anthropic_connection(org, anthropic_fake):
    connection, _ = provider_connection_upsert(
        organization=org, provider="anthropic", admin_key=anthropic_fake.admin_key,
        api_base=anthropic_fake.url,
    )  # fmt: skip
    return connection
