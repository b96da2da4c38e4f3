"""Ninety days of usage for the demo organization, sent through the production ingest service.

``demo_seed(organization=…)`` builds raw events exactly as other services send them and
hands them to :func:`ingestion.services.ingest.usage_events_ingest` in batches of 1,000, so
validation, attribution, costing, deduplication and rollups are the production ones. The
organization's accept window is first raised to ``ACCEPT_DAYS`` (through a service), since
the default 35 days would reject two thirds of the history.

Time: the ``DAYS`` complete UTC days before today (today itself is left out, so every run on
one day sends exactly the same events). Determinism: each day's traffic comes from
``random.Random`` seeded with the day's date, and everything that shapes it (customers,
growth, prompt versions) depends on absolute dates, never on today. Event ids are
``demo-<day>-<counter>``: re-running on the same day yields only duplicates, a later day
adds only the new days.

The traffic is one product's (customers, plans, features and keys of ``accounts.demo``):
heavy-tailed per customer (Helix Labs, Northwind AI and Nimbus Health dominate), daytime
peaks per region, quieter weekends, token counts per feature. On top of it, the waste
patterns the findings detectors look for (DESIGN §8) are planted so they are clearly there:

1. model overkill: onboarding's template classifier (outputs of 1-8 tokens) runs on gpt-4.1,
   while an A/B slice on gpt-4o-mini scores the same ``quality_score``;
2. batch eligibility: ``nightly-digest`` jobs (01:00-04:00 UTC) on the synchronous API;
3. caching gap: document summaries of 8.5k-180k input tokens with almost no cached tokens;
4. orphaned spend: traffic on the unmapped key and on the retired classifier's key;
5. staging on premium models: gpt-4.1 and claude-opus-4-5 with ``environment="staging"``;
6. free-tier subsidy: a few Free accounts summarizing large documents all day;
7. tenant concentration: the three named Enterprise accounts.

Also: retries (attempt 2-3, some ending in errors), a chat prompt version that bloats input
tokens mid-period, Anthropic prompt caching (reads and writes, ledger convention), an
unpriced fine-tune, provider-reported costs and correctly batched re-indexing for contrast.
"""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import accumulate
from time import monotonic

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from accounts.demo import (
    DEMO_ANCHOR,
    ENTERPRISE,
    FREE,
    PRO,
    PROVIDER_KEYS,
    STARTER,
    demo_customer_specs,
)
from accounts.models import Organization
from accounts.services import organization_update
from ingestion.models import DailyUsage
from ingestion.pricing import PriceBook, TokenUsage
from ingestion.services.ingest import usage_events_ingest
from ingestion.validation import MAX_BATCH

USAGE_SEED = 20261102
DAYS = 90
ACCEPT_DAYS = 100  # the demo's accept window: DAYS plus room to re-run for a week
INTERACTIVE_PER_WEEKDAY = 500  # customer-driven calls on a weekday at scale 1
WEEKEND_SHARE = 0.4
PATTERN_FLOOR = 0.2  # planted streams shrink at most to this (or 2 × scale) at a reduced scale

_KEYS = {(spec.feature_key, str(spec.environment)): spec.key_id for spec in PROVIDER_KEYS}
CHAT_KEY = _KEYS["chat-assistant", "production"]
CHAT_STAGING_KEY = _KEYS["chat-assistant", "staging"]
SEARCH_KEY = _KEYS["semantic-search", "production"]
LEGACY_KEY = _KEYS["legacy-classifier", "production"]  # its feature is retired
UNMAPPED_KEY = _KEYS[None, "production"]
SUMMARY_KEY = _KEYS["document-summarization", "production"]
SUMMARY_STAGING_KEY = _KEYS["document-summarization", "staging"]
DIGEST_KEY = _KEYS["overnight-summaries", "production"]
ONBOARDING_KEY = _KEYS["ai-onboarding", "production"]

HEAVY = {"helix-labs": 380.0, "northwind-ai": 170.0, "nimbus-health": 360.0}  # traffic weights
FIXED_WEIGHTS = {**HEAVY, "atlas-robotics": 18.0, "beacon": 14.0, "demo-ai-co-internal": 5.0}
QA_ACCOUNT = "qa-test-account"  # end-to-end tests: staging traffic only
PLAN_WEIGHT = {FREE: 0.25, STARTER: 1.0, PRO: 3.5, ENTERPRISE: 12.0}
FREE_HEAVY_ACCOUNTS = 4
KINDS = ("chat", "search", "summarize", "onboard")
MIX = {  # call kinds per customer, relative weights in KINDS order
    "default": (55, 14, 16, 3),
    "helix-labs": (45, 20, 33, 3),
    "northwind-ai": (52, 14, 32, 3),
    "nimbus-health": (30, 18, 50, 3),
}
DOC_MEDIAN = {"helix-labs": 150_000, "northwind-ai": 35_000, "nimbus-health": 110_000}  # tokens
O3_SHARE = {"northwind-ai": 0.25, "helix-labs": 0.08}  # Enterprise "deep answer" mode
# Enterprise accounts on the premium summarizer ("clinical-grade", "legal-grade" review):
# with their volume, enough to put them underwater on the Enterprise price.
OPUS_SUMMARY_SHARE = {"nimbus-health": 0.75, "helix-labs": 0.9}
OPUS = "claude-opus-4-1"
# The research agent beta: a few Pro accounts whose analysts run it all day. A handful of
# users costing more than the plan earns per user (a margin-negative feature on Pro), and
# the accounts that carry it far above the plan price (Pro's tail).
RESEARCH_ACCOUNTS = 4
RESEARCHERS = 3  # per account
RESEARCH_LAUNCH = date(2026, 9, 1)
RESEARCH_RUNS = 3  # per researcher and weekday
DIGESTS = {"helix-labs": 12, "northwind-ai": 12, "nimbus-health": 18, ENTERPRISE: 3}  # per night
REGION_UTC_OFFSET = {"na": -5, "eu": 1, "apac": 8}  # hours; shapes the daytime peak

# Chat prompt deploys every 45 days from here; even versions carry a long few-shot block
# (+40% input tokens) that the following odd version trims. Absolute dates keep every
# past day's events identical from run to run.
CHAT_PROMPT_V4 = date(2026, 10, 9)
CHAT_PROMPT_DAYS = 45
BLOATED_PROMPT = 1.4


def _hour_weights(offset: int) -> list[float]:
    """Cumulative weights of the 24 UTC hours for a region: a daytime bump around 13:30 local."""
    weights = []
    for hour in range(24):
        local = (hour + offset) % 24
        weights.append(0.06 + math.exp(-((local - 13.5) ** 2) / 18))
    return list(accumulate(weights))


HOURS = range(24)
HOUR_WEIGHTS = {region: _hour_weights(offset) for region, offset in REGION_UTC_OFFSET.items()}


def chat_prompt_version(day: date) -> str:
    """The chat assistant's prompt version deployed on ``day`` (v3, v4, …)."""
    return f"v{4 + (day - CHAT_PROMPT_V4).days // CHAT_PROMPT_DAYS}"


def _growth(day: date) -> float:
    # ~+30% a quarter around the demo's anchor, bounded so a demo seeded months later
    # stays inside the intended volume.
    return min(max(1 + 0.0035 * (day - DEMO_ANCHOR).days, 0.7), 1.3)


def _hashed(*parts: str) -> str:
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:20]


def _lognormal(rng: random.Random, median: float, sigma: float, low: int, high: int) -> int:
    return int(min(max(rng.lognormvariate(0, sigma) * median, low), high))


def _openai_cached(rng: random.Random, input_tokens: int, share: tuple[float, float]) -> int:
    # OpenAI caches prompt prefixes of 1,024+ tokens, in 128-token steps.
    if input_tokens < 1024 or rng.random() < 0.25:
        return 0
    return max(1024, int(input_tokens * rng.uniform(*share)) // 128 * 128)


@dataclass(frozen=True)
class DemoCustomer:
    """A demo customer's traffic profile; its plan on a day comes from the accounts spec."""

    external_id: str
    region: str
    starts: tuple[date, ...]
    plans: tuple[str, ...]
    churned_on: date | None
    base_weight: float
    users: tuple[str, ...]
    doc_median: int  # summarization input, tokens
    digest_enabled: bool
    is_internal: bool = False
    free_heavy: bool = False
    researchers: tuple[str, ...] = ()

    def plan_on(self, day: date) -> str | None:
        index = bisect_right(self.starts, day) - 1
        if index < 0 or (self.churned_on and day >= self.churned_on):
            return None
        return self.plans[index]

    def weight(self, plan: str) -> float:
        if self.external_id in FIXED_WEIGHTS:
            return FIXED_WEIGHTS[self.external_id]
        return 0.0 if self.external_id == QA_ACCOUNT else self.base_weight * PLAN_WEIGHT[plan]

    def user(self, rng: random.Random) -> str:
        # Half the calls come from the first fifth of users: power users exist everywhere.
        if rng.random() < 0.5:
            return self.users[rng.randrange(max(1, len(self.users) // 5))]
        return rng.choice(self.users)


def demo_customers() -> list[DemoCustomer]:
    """Traffic profiles of the demo's customers (pure and deterministic)."""
    customers = []
    for spec in demo_customer_specs():
        ext = spec.external_id
        rng = random.Random(f"{USAGE_SEED}:customer:{ext}")
        base = rng.lognormvariate(0, 1.0)
        final_plan = spec.history[-1][0]
        typical = FIXED_WEIGHTS.get(ext, base * PLAN_WEIGHT[final_plan])
        customers.append(
            DemoCustomer(
                external_id=ext,
                region=spec.region,
                starts=tuple(day for _, day in spec.history),
                plans=tuple(code for code, _ in spec.history),
                churned_on=spec.churned_on,
                base_weight=base,
                users=tuple(
                    "u_" + _hashed(ext, str(n)) for n in range(min(4 + int(2.5 * typical), 400))
                ),
                doc_median=DOC_MEDIAN.get(ext, int(18_000 * rng.lognormvariate(0, 0.3))),
                digest_enabled=rng.random() < 0.35,
                is_internal=spec.is_internal,
            )
        )
    # The free-tier subsidy: long-standing Free accounts that summarize all day.
    candidates = sorted(
        c.external_id
        for c in customers
        if set(c.plans) == {FREE}
        and not c.is_internal
        and not c.churned_on
        and c.starts[0] < DEMO_ANCHOR - timedelta(days=120)
    )
    chosen = set(random.Random(f"{USAGE_SEED}:free-heavy").sample(candidates, FREE_HEAVY_ACCOUNTS))
    customers = [
        replace(c, free_heavy=True, doc_median=20_000) if c.external_id in chosen else c
        for c in customers
    ]
    # The research agent's beta accounts: Pro since before its launch, still Pro.
    pro = sorted(
        c.external_id
        for c in customers
        if c.plans[-1] == PRO and c.plan_on(RESEARCH_LAUNCH) == PRO and not c.churned_on
    )
    research = set(random.Random(f"{USAGE_SEED}:research").sample(pro, RESEARCH_ACCOUNTS))
    return [
        replace(c, researchers=c.users[:RESEARCHERS]) if c.external_id in research else c
        for c in customers
    ]


class DayTraffic:
    """One UTC day of raw events, generated from the day's own seeded RNG."""

    def __init__(
        self, day: date, customers: list[DemoCustomer], *, scale: float, prices: PriceBook
    ):
        self.day = day
        self.scale = scale
        # Planted streams shrink less than the rest, so they stay visible at test scales.
        self.pattern_scale = max(scale, min(PATTERN_FLOOR, 2 * scale))
        self.rng = random.Random(f"{USAGE_SEED}:{day.isoformat()}:{scale}")
        self.prices = prices
        self.weekend = day.weekday() >= 5
        self.midnight = datetime.combine(day, time.min, tzinfo=UTC)
        self.events: list[dict] = []
        self.active = [(c, plan) for c in customers if (plan := c.plan_on(day))]

    def generate(self, prefix: str) -> list[dict]:
        """All streams of the day, in time order, with ids ``<prefix>-<day>-<counter>``."""
        self.interactive()
        self.nightly_digests()
        self.reindex_batch()
        self.free_tier_summaries()
        self.research_agent()
        self.staging()
        self.legacy_classifier()
        self.unmapped_key()
        self.unknown_model()
        self.events.sort(key=lambda raw: raw["timestamp"])  # stable: ties keep their order
        for counter, raw in enumerate(self.events, start=1):
            raw["event_id"] = f"{prefix}-{self.day.isoformat()}-{counter:06d}"
        return self.events

    # --- helpers -----------------------------------------------------------------------

    def count(self, mean: float) -> int:
        """``mean`` rounded up or down at random, so small means stay unbiased."""
        whole = int(mean)
        return whole + (self.rng.random() < mean - whole)

    def daytime(self, region: str) -> datetime:
        hour = self.rng.choices(HOURS, cum_weights=HOUR_WEIGHTS[region])[0]
        return self.at(hour + self.rng.random())

    def at(self, hours: float) -> datetime:
        return self.midnight + timedelta(milliseconds=int(hours * 3_600_000))

    def emit(self, at: datetime, provider: str, model: str, **fields) -> dict:
        """Append one raw event; empty fields are left out, as a caller would."""
        raw = {"timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
        raw.update(provider=provider, model=model)
        raw.update((name, value) for name, value in fields.items() if value not in (None, "", {}))
        self.events.append(raw)
        return raw

    def call(self, at: datetime, provider: str, model: str, *, retry_rate: float, **fields):
        """One logical call: failed attempts (timeouts, billed input) then the final one."""
        attempt = 1
        while self.rng.random() < (retry_rate if attempt == 1 else 0.3):
            latency = self.rng.randint(20_000, 60_000)
            self.emit(
                at, provider, model, **{**_without_results(fields), "status": "error",
                "attempt": attempt, "latency_ms": latency},
            )  # fmt: skip
            if attempt == 3:  # the caller gives up: the request ends in an error
                return
            at += timedelta(milliseconds=latency + self.rng.randint(500, 4000))
            attempt += 1
        self.emit(at, provider, model, attempt=attempt if attempt > 1 else None, **fields)

    # --- customer-driven traffic -----------------------------------------------------

    def interactive(self) -> None:
        customers = [(c, plan) for c, plan in self.active if c.weight(plan) > 0]
        weights = [c.weight(plan) for c, plan in customers]
        mean = INTERACTIVE_PER_WEEKDAY * _growth(self.day) * self.scale
        mean *= WEEKEND_SHARE if self.weekend else 1
        for customer, plan in self.rng.choices(customers, weights, k=self.count(mean)):
            mix = MIX.get(customer.external_id, MIX["default"])
            if (self.day - customer.starts[0]).days < 21:  # new accounts set up workspaces
                mix = (*mix[:3], 30)
            kind = self.rng.choices(KINDS, weights=mix)[0]
            at = self.daytime(customer.region)
            getattr(self, kind)(customer, plan, at)

    def chat(self, customer: DemoCustomer, plan: str, at: datetime) -> None:
        rng = self.rng
        version = chat_prompt_version(self.day)
        roll = rng.random()
        model = "gpt-4o"
        if plan == ENTERPRISE and roll < O3_SHARE.get(customer.external_id, 0.04):
            model = "o3"
        elif roll > 0.65:
            model = "gpt-4o-mini"
        input_tokens = _lognormal(rng, 7500, 0.5, 1200, 120_000)  # RAG context
        if int(version[1:]) % 2 == 0:
            input_tokens = int(input_tokens * BLOATED_PROMPT)
        output = _lognormal(rng, 320, 0.7, 8, 4000)
        reasoning = _lognormal(rng, 2500, 0.6, 300, 20_000) if model == "o3" else 0
        fields = {
            "customer_id": customer.external_id,
            "user_id": customer.user(rng),
            "feature": "chat-assistant",
            "workflow": "chat",
            "prompt_version": version,
            "api_key_id": CHAT_KEY,
            "environment": "production",
            "input_tokens": input_tokens,
            "cached_input_tokens": _openai_cached(rng, input_tokens, (0.3, 0.7)),
            "output_tokens": output + reasoning,
            "reasoning_tokens": reasoning or None,
            "latency_ms": int(350 + (output + reasoning) * rng.uniform(8, 20)),
            "quality_score": f"{rng.uniform(0.72, 0.97):.2f}" if rng.random() < 0.08 else None,
            "metadata": {
                "region": customer.region,
                "surface": rng.choices(("web", "slack", "api"), (70, 20, 10))[0],
            },
        }
        if rng.random() < 0.006:
            # Calls through the gateway proxy arrive with the provider's own cost figure.
            fields["source"] = "proxy"
            fields["cost_usd"] = self.reported_cost("openai", model, fields, at)
            self.emit(at, "openai", model, **fields)
            return
        self.call(at, "openai", model, retry_rate=0.012, **fields)

    def search(self, customer: DemoCustomer, plan: str, at: datetime) -> None:
        self.emit(
            at, "openai", "text-embedding-3-small",
            customer_id=customer.external_id, user_id=customer.user(self.rng),
            feature="semantic-search", workflow="query", api_key_id=SEARCH_KEY,
            input_tokens=_lognormal(self.rng, 350, 0.8, 12, 8000), output_tokens=0,
            latency_ms=self.rng.randint(40, 220), metadata={"region": customer.region},
        )  # fmt: skip

    def summarize(self, customer: DemoCustomer, plan: str, at: datetime) -> None:
        rng = self.rng
        input_tokens = _lognormal(rng, customer.doc_median, 0.6, 8_500, 190_000)
        output = _lognormal(rng, 900, 0.5, 120, 4000)
        # No cache_control in the summarizer: a shared instruction block is rarely reused.
        cached = rng.choice((1024, 1536, 2048)) if rng.random() < 0.03 else 0
        premium = rng.random() < OPUS_SUMMARY_SHARE.get(customer.external_id, 0)
        self.call(
            at, "anthropic", OPUS if premium else "claude-sonnet-4-5", retry_rate=0.01,
            customer_id=customer.external_id, user_id=customer.user(rng),
            feature="document-summarization", workflow="on-demand", prompt_version="sum-v2",
            api_key_id=SUMMARY_KEY, input_tokens=input_tokens, cached_input_tokens=cached,
            output_tokens=output, latency_ms=int(1500 + input_tokens / 40 + output * 25),
            quality_score=f"{rng.uniform(0.78, 0.96):.2f}" if rng.random() < 0.1 else None,
            metadata={"region": customer.region},
        )  # fmt: skip

    def onboard(self, customer: DemoCustomer, plan: str, at: datetime) -> None:
        """An onboarding interview: Claude turns with prompt caching, each answer classified."""
        rng = self.rng
        system = 5400  # instructions + workspace templates, cached with cache_control
        history = 0
        premium = rng.random() < 0.75  # the A/B slice on gpt-4o-mini is the other quarter
        user = customer.user(rng)
        common = {"customer_id": customer.external_id, "user_id": user, "feature": "ai-onboarding"}
        metadata = {"region": customer.region}
        for turn in range(rng.randint(3, 7)):
            new = rng.randint(150, 500)
            output = rng.randint(120, 450)
            # Ledger convention: input includes cache reads and writes. The first turn writes
            # the system prompt; later turns read everything up to the previous breakpoint.
            read, written = (0, system + new) if turn == 0 else (system + history, new)
            self.emit(
                at, "anthropic", "claude-sonnet-4-5", **common, workflow="interview",
                prompt_version="onb-v5", api_key_id=ONBOARDING_KEY,
                input_tokens=system + history + new, cached_input_tokens=read,
                cache_write_tokens=written, output_tokens=output,
                latency_ms=int(900 + output * 18), metadata=metadata,
            )  # fmt: skip
            history += new + output
            at += timedelta(milliseconds=rng.randint(1500, 4000))
            # The template catalog (~3k tokens) and the transcript in, a label such as
            # "research-lab" out: a premium model for a few tokens.
            quality = rng.gauss(0.925 if premium else 0.915, 0.025)
            self.emit(
                at, "openai", "gpt-4.1" if premium else "gpt-4o-mini", **common,
                workflow="template-classifier", prompt_version="cls-v2",
                input_tokens=3200 + history, output_tokens=rng.randint(1, 8),
                latency_ms=rng.randint(250, 900), metadata=metadata,
                quality_score=f"{min(max(quality, 0), 1):.2f}" if rng.random() < 0.5 else None,
            )  # fmt: skip
            at += timedelta(seconds=rng.randint(20, 120))

    def reported_cost(self, provider: str, model: str, fields: dict, at: datetime) -> str | None:
        usage = TokenUsage(
            input_tokens=fields["input_tokens"],
            output_tokens=fields["output_tokens"],
            cached_input_tokens=fields.get("cached_input_tokens") or 0,
            reasoning_tokens=fields.get("reasoning_tokens") or 0,
        )
        quote = self.prices.quote(provider=provider, model=model, at=at, usage=usage)
        return None if quote is None else str(quote.cost.quantize(Decimal("0.000001")))

    # --- scheduled and background traffic --------------------------------------------

    def nightly_digests(self) -> None:
        """Overnight summaries: a scheduler fans out digests 01:00-04:00 UTC, synchronously."""
        rng = self.rng
        for customer, plan in self.active:
            if plan == FREE or customer.external_id in (QA_ACCOUNT, "demo-ai-co-internal"):
                continue
            if plan == STARTER and not customer.digest_enabled:
                continue
            digests = DIGESTS.get(customer.external_id, DIGESTS.get(plan, 1))
            for _ in range(self.count(digests * self.scale)):
                input_tokens = _lognormal(rng, 14_000, 0.5, 3000, 90_000)
                output = _lognormal(rng, 1000, 0.4, 250, 3000)
                self.emit(
                    self.at(1 + rng.random() * 2.999), "anthropic", "claude-sonnet-4-5",
                    customer_id=customer.external_id, feature="overnight-summaries",
                    workflow="nightly-digest", prompt_version="digest-v2",
                    api_key_id=DIGEST_KEY, input_tokens=input_tokens, output_tokens=output,
                    latency_ms=int(2000 + output * 22),
                    metadata={"region": customer.region, "trigger": "schedule"},
                )  # fmt: skip

    def reindex_batch(self) -> None:
        """Search re-indexing done right: embeddings through the Batch API, for contrast."""
        rng = self.rng
        customers = [(c, p) for c, p in self.active if p in (PRO, ENTERPRISE)]
        for customer, _ in rng.choices(customers, k=self.count(30 * self.scale)):
            self.emit(
                self.at(2 + rng.random() * 3), "openai", "text-embedding-3-small",
                customer_id=customer.external_id, feature="semantic-search", workflow="reindex",
                api_key_id=SEARCH_KEY, batch=True,
                input_tokens=_lognormal(rng, 4000, 0.4, 1000, 8000), output_tokens=0,
                metadata={"region": customer.region, "trigger": "schedule"},
            )  # fmt: skip

    def free_tier_summaries(self) -> None:
        for customer, plan in self.active:
            if customer.free_heavy and plan == FREE:
                mean = (4 if self.weekend else 10) * self.pattern_scale
                for _ in range(self.count(mean)):
                    self.summarize(customer, plan, self.daytime(customer.region))

    def research_agent(self) -> None:
        """Agent runs on the premium model: each step re-reads the growing transcript."""
        if self.day < RESEARCH_LAUNCH or self.weekend:
            return
        rng = self.rng
        for customer, plan in self.active:
            if not customer.researchers or plan != PRO:
                continue
            for user in customer.researchers:
                for _ in range(self.count(RESEARCH_RUNS * self.pattern_scale)):
                    at = self.daytime(customer.region)
                    context = _lognormal(rng, 16_000, 0.4, 4_000, 60_000)
                    for step in range(rng.randint(5, 9)):
                        output = _lognormal(rng, 1100, 0.5, 150, 4000)
                        self.call(
                            at, "anthropic", OPUS, retry_rate=0.01,
                            customer_id=customer.external_id, user_id=user,
                            feature="research-agent", workflow="research-run",
                            prompt_version="agent-v1", input_tokens=context,
                            output_tokens=output, latency_ms=int(2500 + output * 30),
                            metadata={"region": customer.region, "step": str(step + 1)},
                        )  # fmt: skip
                        context += output + _lognormal(rng, 5_000, 0.5, 500, 30_000)  # tools
                        at += timedelta(seconds=rng.randint(8, 40))

    def staging(self) -> None:
        """The team tests the next prompts in staging on production-grade models (EU hours)."""
        rng = self.rng
        engineers = [f"eng_{_hashed('demo-engineer', str(n))}" for n in range(5)]
        for _ in range(self.count((20 if self.weekend else 180) * self.pattern_scale)):
            at = self.daytime("eu")
            common = {"customer_id": QA_ACCOUNT, "user_id": rng.choice(engineers),
                      "environment": "staging", "metadata": {"region": "eu"}}  # fmt: skip
            if rng.random() < 0.55:
                next_version = f"v{int(chat_prompt_version(self.day)[1:]) + 1}"
                self.emit(
                    at, "openai", "gpt-4.1", **common, feature="chat-assistant",
                    workflow="chat", prompt_version=next_version, api_key_id=CHAT_STAGING_KEY,
                    input_tokens=_lognormal(rng, 4200, 0.5, 600, 40_000),
                    output_tokens=_lognormal(rng, 350, 0.6, 10, 3000),
                )  # fmt: skip
            else:
                self.emit(
                    at, "anthropic", "claude-opus-4-5", **common,
                    feature="document-summarization", workflow="on-demand",
                    prompt_version="sum-v3", api_key_id=SUMMARY_STAGING_KEY,
                    input_tokens=_lognormal(rng, 16_000, 0.5, 8_500, 120_000),
                    output_tokens=_lognormal(rng, 800, 0.5, 120, 4000),
                )  # fmt: skip

    def legacy_classifier(self) -> None:
        """A forgotten cron still routes tickets through the retired classifier's key."""
        rng = self.rng
        for _ in range(self.count(360 * self.pattern_scale)):
            self.emit(
                self.at(rng.random() * 24), "openai", "gpt-4o", workflow="ticket-router",
                api_key_id=LEGACY_KEY, input_tokens=rng.randint(700, 1600),
                output_tokens=rng.randint(1, 4), latency_ms=rng.randint(300, 900),
            )  # fmt: skip

    def unmapped_key(self) -> None:
        """Spend on a key nobody claimed: no feature tag, attributed by nothing."""
        rng = self.rng
        for _ in range(self.count((60 if self.weekend else 220) * self.pattern_scale)):
            output = _lognormal(rng, 450, 0.5, 50, 3000)
            self.emit(
                self.daytime("na"), "openai", "gpt-4o", api_key_id=UNMAPPED_KEY,
                input_tokens=_lognormal(rng, 4500, 0.5, 800, 30_000), output_tokens=output,
                latency_ms=int(400 + output * 12), metadata={"region": "na", "host": "etl-2"},
            )  # fmt: skip

    def unknown_model(self) -> None:
        """An in-house fine-tune routes chat intents; no price is known for it (unpriced)."""
        rng = self.rng
        customers = [(c, p) for c, p in self.active if c.weight(p) > 0]
        weights = [c.weight(p) for c, p in customers]
        mean = (4 if self.weekend else 10) * self.pattern_scale
        for customer, _ in rng.choices(customers, weights, k=self.count(mean)):
            self.emit(
                self.daytime(customer.region), "together", "acme-finetune-7b",
                customer_id=customer.external_id, user_id=customer.user(rng),
                feature="chat-assistant", workflow="intent-router",
                input_tokens=rng.randint(200, 700), output_tokens=rng.randint(1, 3),
                latency_ms=rng.randint(80, 300), metadata={"region": customer.region},
            )  # fmt: skip


def _without_results(fields: dict) -> dict:
    """A failed attempt's fields: the prompt was sent, nothing came back."""
    dropped = {"output_tokens", "reasoning_tokens", "quality_score", "latency_ms"}
    return {**{k: v for k, v in fields.items() if k not in dropped}, "output_tokens": 0}


@dataclass
class UsageSeedSummary:
    """What ``demo_seed`` sent and what the ledger holds for the seeded days."""

    first_day: date
    last_day: date
    days: int
    accept_days: int
    accept_days_before: int
    outcomes: Counter = field(default_factory=Counter)
    rejections: Counter = field(default_factory=Counter)  # reason → events
    cost: Decimal = Decimal(0)  # USD, the ledger's total over the seeded days
    unpriced: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        o = self.outcomes
        window = (
            f"accept window raised {self.accept_days_before} → {self.accept_days} days"
            if self.accept_days_before != self.accept_days
            else f"accept window {self.accept_days} days"
        )
        text = (
            f"{self.days} days {self.first_day}…{self.last_day}: {o['accepted']:,} accepted, "
            f"{o['duplicate']:,} duplicates, {o['conflict']:,} conflicts, "
            f"{o['rejected']:,} rejected; ledger cost ${self.cost:,.2f} "
            f"({self.unpriced:,} unpriced events); {window}; {self.seconds:.1f} s"
        )
        if self.rejections:
            reason, count = self.rejections.most_common(1)[0]
            text += f"; first rejection reason ({count}×): {reason}"
        return text


def demo_seed(
    *, organization: Organization, scale: float | None = None, now: datetime | None = None
) -> UsageSeedSummary:
    """Send ``DAYS`` days of demo usage (about 72,000 events at ``scale=1``) through ingest.

    Idempotent: the same day's events have the same ids and payloads, so a re-run on one
    day yields only duplicates. ``scale`` shrinks the customer-driven volume (tests); the
    planted patterns shrink half as much (down to ``PATTERN_FLOOR``). Without it, the setting
    ``METRON_DEMO_USAGE_SCALE`` (default 1) applies: test settings lower it so that every
    test running ``seed_demo`` stays fast.
    """
    started = monotonic()
    if scale is None:
        scale = getattr(settings, "METRON_DEMO_USAGE_SCALE", 1.0)
    now = now or timezone.now()
    before = organization.usage_accept_days
    if before < ACCEPT_DAYS:
        organization = organization_update(organization=organization, usage_accept_days=ACCEPT_DAYS)
    today = now.astimezone(UTC).date()
    days = [today - timedelta(days=n) for n in range(DAYS, 0, -1)]
    summary = UsageSeedSummary(
        first_day=days[0], last_day=days[-1], days=DAYS,
        accept_days=organization.usage_accept_days, accept_days_before=before,
    )  # fmt: skip
    prefix = "demo" if scale == 1 else f"demo-x{scale:g}"  # other scales never collide
    customers = demo_customers()
    prices = PriceBook()
    pending: list[dict] = []
    for day in days:
        pending.extend(DayTraffic(day, customers, scale=scale, prices=prices).generate(prefix))
        while len(pending) >= MAX_BATCH:
            _send(organization, pending[:MAX_BATCH], now, summary)
            del pending[:MAX_BATCH]
    if pending:
        _send(organization, pending, now, summary)

    totals = DailyUsage.objects.filter(
        organization=organization, day__gte=days[0], day__lte=days[-1]
    ).aggregate(cost=Sum("cost"), unpriced=Sum("unpriced_requests"))
    summary.cost = (totals["cost"] or Decimal(0)).quantize(Decimal("0.01"))
    summary.unpriced = totals["unpriced"] or 0
    summary.seconds = monotonic() - started
    return summary


def _send(organization, raw_events, now, summary) -> None:
    result = usage_events_ingest(organization=organization, raw_events=raw_events, now=now)
    for outcome in result.outcomes:
        summary.outcomes[outcome.status] += 1
        if outcome.reason and outcome.status == "rejected":
            summary.rejections[outcome.reason] += 1
