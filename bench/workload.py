"""The reference usage workload: synthetic events as Metron's callers send them, deterministic.

``reference_catalog(seed=…)`` gives the organization's catalog (plans, customers on those plans,
features, provider keys mapped to features) and ``Workload(seed=…, now=…)`` the events that
refer to it. The same seed and anchor time give byte-identical events, so a benchmark can send
exactly the same rows twice and two runs compare.

The mix is meant to look like one AI product's traffic over the last ``days`` days, in time
order (as live senders and backfills deliver it):

- features of skewed popularity, each calling its own model 75% of the time and a second one
  20% (models of OpenAI, Anthropic and Google by weight, including an unlisted fine-tune that
  stays unpriced);
- reasoning models report reasoning tokens; ~40% of OpenAI/Anthropic calls hit the prompt cache,
  ~10% of Anthropic calls write to it; ~6% of batchable calls use the batch API, some OpenAI
  calls a service tier (``flex``, ``priority``);
- skewed customer activity (a few heavy accounts, a long tail) and ~1% of traffic from
  customers not in the catalog (registered as unreviewed by ingest);
- 88% of events tagged with a feature, the rest attributed through their provider key;
- 90% production, errors (2%), retries (3.5%), latency, some quality scores, some
  provider-reported costs, and metadata on half the events.

Token counts are log-normal. Only the standard library is used: the generator runs in
benchmark clients and tests without Django.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

# provider, model, weight, reports reasoning tokens, has a batch API
MODELS: tuple[tuple[str, str, float, bool, bool], ...] = (
    ("openai", "gpt-4o-mini", 26, False, True),
    ("openai", "gpt-4o", 12, False, True),
    ("openai", "gpt-4.1", 8, False, True),
    ("openai", "gpt-4.1-mini", 8, False, True),
    ("openai", "o4-mini", 6, True, True),
    ("anthropic", "claude-sonnet-4-5", 14, False, True),
    ("anthropic", "claude-haiku-4-5", 10, False, True),
    ("google", "gemini-2.5-flash", 10, False, False),
    ("google", "gemini-2.5-pro", 4, True, False),
    ("openai", "ft:gpt-4o-mini:acme:support:v3", 2, False, False),  # unlisted: unpriced
)
FEATURES = (
    "chat-assistant", "document-summarization", "ticket-triage", "code-review",
    "search-answers", "email-drafts", "meeting-notes", "translation", "data-extraction",
    "sql-helper", "onboarding-tips", "sentiment-tags",
)  # fmt: skip
PLANS: tuple[tuple[str, str, Decimal, bool], ...] = (  # code, name, monthly price, free
    ("free", "Free", Decimal("0"), True),
    ("starter", "Starter", Decimal("49"), False),
    ("pro", "Pro", Decimal("199"), False),
    ("enterprise", "Enterprise", Decimal("1500"), False),
)
PLAN_WEIGHTS = (40, 30, 22, 8)
WORKFLOWS = ("nightly-digest", "ticket-pipeline", "onboarding-flow", "report-builder")
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-1")
ENVIRONMENTS = (("production", 90), ("staging", 7), ("development", 3))
SOURCES = (("sdk", 60), ("proxy", 25), ("api", 15))
KEYS_PER_PROVIDER = 3  # OpenAI and Anthropic keys in the catalog, each mapped to a feature
UNKNOWN_CUSTOMERS = 40  # pool of customer ids that are not in the catalog


@dataclass(frozen=True)
class Catalog:
    """What the organization knows before traffic arrives."""

    plans: tuple[tuple[str, str, Decimal, bool], ...]  # code, name, monthly price, free
    customers: tuple[tuple[str, str], ...]  # external id, plan code
    features: tuple[str, ...]  # feature keys
    provider_keys: tuple[tuple[str, str, str], ...]  # provider, key id, feature key


def reference_catalog(*, seed: int = 0, customers: int = 300) -> Catalog:
    """The catalog the workload refers to: ``customers`` accounts spread over four plans."""
    rng = random.Random(f"catalog-{seed}")
    plan_codes = [code for code, *_ in PLANS]
    accounts = tuple(
        (f"cust-{index:05d}", rng.choices(plan_codes, weights=PLAN_WEIGHTS)[0])
        for index in range(customers)
    )
    keys = tuple(
        (provider, f"key-{provider}-{index}", FEATURES[rng.randrange(len(FEATURES))])
        for provider in ("openai", "anthropic")
        for index in range(KEYS_PER_PROVIDER)
    )
    return Catalog(plans=PLANS, customers=accounts, features=FEATURES, provider_keys=keys)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Workload:
    """Deterministic event generator: same ``seed``, ``now`` and ``count`` → same events.

    Events are spread over ``[now - days, now)`` in time order (with a few minutes of
    jitter), so they all fall in the default 35-day accept window for ``days`` ≤ 34.
    Event ids are ``<id_prefix>-<seed>-<index>``, unique per (prefix, seed).
    """

    def __init__(
        self,
        *,
        now: datetime,
        seed: int = 0,
        days: float = 30,
        catalog: Catalog | None = None,
        id_prefix: str = "evt",
        unknown_customer_share: float = 0.01,
    ) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.now = now.astimezone(UTC)
        self.seed = seed
        self.days = days
        self.catalog = catalog or reference_catalog(seed=seed)
        self.id_prefix = id_prefix
        self.unknown_customer_share = unknown_customer_share

    def events(self, count: int) -> Iterator[dict]:
        """``count`` raw events (dicts ready for ``json.dumps``), oldest first."""
        rng = random.Random(f"events-{self.seed}-{self.id_prefix}")
        models = [m[:2] + m[3:] for m in MODELS]
        model_weights = list(itertools.accumulate(m[2] for m in MODELS))
        customers = [external_id for external_id, _ in self.catalog.customers]
        # Zipf-like activity: the first accounts are the heavy ones.
        customer_weights = list(
            itertools.accumulate(1 / (rank + 1) ** 0.9 for rank in range(len(customers)))
        )
        unknown = [f"new-cust-{self.seed}-{index:03d}" for index in range(UNKNOWN_CUSTOMERS)]
        features = list(self.catalog.features)
        feature_weights = list(
            itertools.accumulate(1 / (rank + 1) ** 0.7 for rank in range(len(features)))
        )
        # A feature calls its own model most of the time, a second one sometimes.
        feature_models = [
            tuple(rng.choices(range(len(models)), cum_weights=model_weights, k=2)) for _ in features
        ]
        keys: dict[str, list[str]] = {}
        for provider, key_id, _ in self.catalog.provider_keys:
            keys.setdefault(provider, []).append(key_id)
        environments = [name for name, _ in ENVIRONMENTS]
        environment_weights = list(itertools.accumulate(w for _, w in ENVIRONMENTS))
        sources = [name for name, _ in SOURCES]
        source_weights = list(itertools.accumulate(w for _, w in SOURCES))
        span = timedelta(days=self.days).total_seconds()
        start = self.now - timedelta(days=self.days)
        latest = self.now - timedelta(seconds=1)
        log_input, log_output, log_latency = math.log(1500), math.log(300), math.log(900)

        for index in range(count):
            seconds = (index + 0.5) / count * span + rng.uniform(-300, 300)
            timestamp = min(max(start + timedelta(seconds=seconds), start), latest)
            feature = rng.choices(range(len(features)), cum_weights=feature_weights)[0]
            draw = rng.random()
            if draw < 0.95:
                model_index = feature_models[feature][0 if draw < 0.75 else 1]
            else:
                model_index = rng.choices(range(len(models)), cum_weights=model_weights)[0]
            provider, model, reasoning, batchable = models[model_index]
            customer_index = -1
            if rng.random() < self.unknown_customer_share:
                customer = unknown[rng.randrange(len(unknown))]
            else:
                customer_index = rng.choices(range(len(customers)), cum_weights=customer_weights)[0]
                customer = customers[customer_index]
            status = "error" if rng.random() < 0.02 else "success"

            input_tokens = min(max(int(rng.lognormvariate(log_input, 1.0)), 1), 400_000)
            output_tokens = min(max(int(rng.lognormvariate(log_output, 0.9)), 1), 32_000)
            if status == "error":
                output_tokens = 0
            event: dict = {
                "event_id": f"{self.id_prefix}-{self.seed}-{index:09d}",
                "timestamp": _iso(timestamp),
                "customer_id": customer,
                "user_id": f"u-{customer_index + 1}-{rng.randrange(60)}",
                "provider": provider,
                "model": model,
                "environment": rng.choices(environments, cum_weights=environment_weights)[0],
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "status": status,
                "latency_ms": int(rng.lognormvariate(log_latency, 0.6)),
                "source": rng.choices(sources, cum_weights=source_weights)[0],
            }
            if rng.random() < 0.88:
                event["feature"] = features[feature]
            if provider in keys and (rng.random() < 0.6 or "feature" not in event):
                event["api_key_id"] = keys[provider][rng.randrange(len(keys[provider]))]
            if provider in ("openai", "anthropic") and rng.random() < 0.4:
                event["cached_input_tokens"] = int(input_tokens * rng.uniform(0.2, 0.9))
            if provider == "anthropic" and rng.random() < 0.1:
                uncached = input_tokens - event.get("cached_input_tokens", 0)
                event["cache_write_tokens"] = int(uncached * rng.uniform(0.1, 0.5))
            if reasoning and output_tokens:
                event["reasoning_tokens"] = int(output_tokens * rng.uniform(0.3, 0.8))
            if batchable and rng.random() < 0.06:
                event["batch"] = True
            elif provider == "openai" and rng.random() < 0.15:
                event["service_tier"] = "flex" if rng.random() < 0.6 else "priority"
            if rng.random() < 0.035:
                event["attempt"] = 2 if rng.random() < 0.85 else 3
            if rng.random() < 0.3:
                event["workflow"] = WORKFLOWS[rng.randrange(len(WORKFLOWS))]
            if rng.random() < 0.5:
                event["prompt_version"] = f"v{rng.randrange(1, 6)}"
            if rng.random() < 0.15:
                event["quality_score"] = round(rng.uniform(0.4, 1.0), 2)
            if rng.random() < 0.05:
                event["cost_usd"] = round(rng.uniform(0.0001, 0.05), 6)
            if rng.random() < 0.5:
                metadata = {"region": REGIONS[rng.randrange(len(REGIONS))]}
                if rng.random() < 0.2:
                    metadata["request_kind"] = "tool-call" if rng.random() < 0.5 else "chat"
                event["metadata"] = metadata
            yield event


def batches(events: Iterable[dict], size: int) -> Iterator[list[dict]]:
    """Consecutive batches of at most ``size`` events."""
    iterator = iter(events)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def batch_bodies(events: Iterable[dict], size: int) -> list[bytes]:
    """Request bodies ``{"events": [...]}`` of at most ``size`` events each, as UTF-8 JSON."""
    return [
        json.dumps({"events": batch}, separators=(",", ":")).encode()
        for batch in batches(events, size)
    ]
