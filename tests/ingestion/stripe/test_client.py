"""Retries: Stripe's own (5xx, with an explicit max_network_retries) and Metron's 429 backoff."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import stripe

from ingestion.models import StripeCustomer, SyncRun
from ingestion.services.stripe import client as api
from ingestion.services.stripe.backfill import stripe_backfill_execute, stripe_backfill_start

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]
SKIP_DIRS = {".venv", "node_modules", ".git", "staticfiles", ".metron"}


@pytest.fixture
def sleeps(monkeypatch):
    """Metron's backoff delays, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(api, "_sleep", recorded.append)
    return recorded


def test_429_is_backed_off_as_retry_after_says_and_retried(org, connection, stripe_fake, sleeps):
    stripe_fake.fail_next(429, times=2, headers={"Retry-After": "3"})

    run = stripe_backfill_execute(run_id=stripe_backfill_start(organization=org).pk)

    assert run.status == SyncRun.Status.SUCCEEDED
    # The first list call met two 429s (the stripe client does not retry them: one
    # request each), waited 3 s twice, and the third request got the page.
    assert stripe_fake.requests_to("/v1/customers") == 3
    assert sleeps == [3.0, 3.0]
    assert StripeCustomer.objects.count() == stripe_fake.count("customer")


def test_429_without_retry_after_backs_off_exponentially_then_gives_up(
    org, connection, stripe_fake, sleeps
):
    stripe_fake.fail_next(429, times=api.RATE_LIMIT_ATTEMPTS)
    run = stripe_backfill_start(organization=org)

    with pytest.raises(stripe.RateLimitError):
        stripe_backfill_execute(run_id=run.pk)

    assert stripe_fake.requests_to("/v1/customers") == api.RATE_LIMIT_ATTEMPTS == 5
    # Jittered between half and all of 1, 2, 4, 8 seconds.
    assert len(sleeps) == 4
    for attempt, delay in enumerate(sleeps):
        ceiling = api.RATE_LIMIT_BASE_DELAY * 2**attempt
        assert ceiling / 2 <= delay <= ceiling
    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED and "RateLimitError" in run.error
    # The task queue's retry resumes the same run and finishes it.
    assert stripe_backfill_execute(run_id=run.pk).status == SyncRun.Status.SUCCEEDED


def test_a_500_is_attempted_three_times_by_the_stripe_client(org, connection, stripe_fake, sleeps):
    stripe_fake.fail_next(500, times=2)

    objects, _ = api.list_page(api.stripe_client(connection), "customers", params={"limit": 100})

    assert len(objects) == stripe_fake.count("customer")
    assert stripe_fake.requests_to("/v1/customers") == 3  # max_network_retries=2: 1 + 2 retries
    assert sleeps == []  # Stripe's own retries, not Metron's 429 backoff

    stripe_fake.requests.clear()
    stripe_fake.fail_next(500, times=3)
    with pytest.raises(stripe.APIError):
        api.list_page(api.stripe_client(connection), "customers", params={"limit": 100})
    assert stripe_fake.requests_to("/v1/customers") == 3


def test_a_wrong_key_is_refused_by_the_fake(org, connection, stripe_fake):
    connection.set_api_key("sk_test_wrong_key_000")
    with pytest.raises(stripe.AuthenticationError):
        api.list_page(api.stripe_client(connection), "customers", params={"limit": 1})
    assert stripe_fake.requests[-1].headers["Authorization"] == "Bearer sk_test_wrong_key_000"


def _stripe_client_calls() -> list[tuple[Path, ast.Call]]:
    calls = []
    for path in ROOT.rglob("*.py"):
        if SKIP_DIRS & set(path.relative_to(ROOT).parts):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name == "StripeClient":
                    calls.append((path, node))
    return calls


def test_every_stripe_client_passes_max_network_retries():
    # StripeClient(api_key) without it retries NOTHING (None counts as 0 attempts).
    calls = _stripe_client_calls()

    assert calls, "no StripeClient( call found: the guard would be vacuous"
    missing = [
        f"{path.relative_to(ROOT)}:{call.lineno}"
        for path, call in calls
        if not any(keyword.arg == "max_network_retries" for keyword in call.keywords)
    ]
    assert missing == []
