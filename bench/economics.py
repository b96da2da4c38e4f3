"""Economics at ten million events: full month recompute and one-day update ÷ a bare GROUP BY.

What is measured, and how:

1. A fresh database (dropped and created) on the server of ``DATABASE_URL``, or, without it, on
   the embedded PostgreSQL (``metron.embedded_db``): database ``metron_bench_economics``.
   ``manage.py migrate``, then, through the services in a ``manage.py shell`` subprocess: an
   organization with 5 plans, 10,000 customers (3% change plan in the month, 20 are internal
   accounts, each with a region, a segment, an industry and a start month), 40 customers first
   seen in usage (unreviewed, no plan), 30 features, 6 provider keys mapped to features, a month
   of recognized revenue for every paid customer (a manual revenue entry per plan period,
   prorated when the plan changed), an ops user and a read-scope API key.
2. The month: the latest calendar month that has ended and has at least 30 days; the events
   fill its first 30 days, and the run acts as if it were one hour after them (``now`` below,
   so that a late batch for those days is inside the accept window and the rolling 30 days are
   the same 30 days).
3. The ledger: N events (default 10,000,000) of the reference mix of ``bench/workload.py``
   (Zipf-like customers and features, a feature's own model 75% of the time, 12 models, users
   per customer, prompt versions, 10% non-production, 12% untagged and attributed through their
   provider key or not at all, errors, retries, cache and reasoning tokens, batch and flex, 5%
   provider-reported costs, metadata), generated inside PostgreSQL by one
   ``INSERT … SELECT … FROM generate_series`` per core (Python would take longer than the
   database), priced per token type at the price book's list prices for the month (batch and
   flex at half price; the fine-tune stays unpriced). The ledger's indexes are dropped for the
   load and rebuilt after it, as a restore would, then ``VACUUM ANALYZE``; the rollups are
   rebuilt day by day with ``rollups_rebuild``, which appends each day's ``UsageChange``
   marker. The ledger is loaded in two steps: the first 3 days (N/10 events), then the other
   27. Generation is timed and printed, never part of a figure.
4. Timed at both ledger sizes (N/10, then N), each once, after ``ANALYZE`` and ``CHECKPOINT``:

   - the bare GROUP BY, what a minimal economics would run over the month's ledger rows — the
     customer × feature month with its active users, every row sent to the client::

         SELECT customer_id, plan_id, feature_id, billable, count(*),
                sum(input_tokens + output_tokens), sum(cost), count(DISTINCT user_id)
         FROM ingestion_usageevent
         WHERE organization_id = %s AND timestamp >= <month start> AND timestamp < <month end>
         GROUP BY customer_id, plan_id, feature_id, billable

   - the full recompute, ``economics_recompute_months(months=[month])``: every day's
     aggregates rebuilt from the rollups and the ledger, the month tables moved by each day's
     difference, then the month snapshot (its ``duration_ms`` is the snapshot part);
   - the one-day update: a late batch of L events (default 5,000) for the month's second day,
     through ``usage_events_ingest`` (1,000 per call; not timed), then ``economics_refresh``:
     the day rebuilt, then ``economics_recompute`` of the month and of the rolling 30 days
     (each snapshot's ``duration_ms`` is printed; the rest is the day rebuild). Beside it, the
     bare GROUP BY over that day's rows. The day holds the same rows at both ledger sizes, so
     an update that follows the rows it touches costs the same at N/10 and at N; the run prints
     each part's growth as an exponent (time ∝ ledger^k) and the conclusion it supports.

5. At N only: the p50/p95 of 20 requests (after one) of the economics customers API list (read
   key) and of the usage-event admin changelist (ops user), through Django's test client in
   this process.

Checked after each step (a failure exits 1 without a ratio): the month snapshot's
``summary.ledger_cost`` equals ``sum(cost)`` of the month's ledger rows exactly; its customers'
``ai_cost`` plus ``non_billable_cost`` equal it too (no provider bills here); the customer ×
feature month table equals the ledger grouped the same way, row by row (requests, tokens,
cost), the customer × model table's totals equal the ledger's, and the month's active users per
feature and plan equal the ledger's distinct users (after the updates); the rolling 30-day
snapshot's ledger cost equals the month's (after the updates); every late event accepted; the
ledger holds exactly the rows generated and ingested.

The last line is ``economics_ratio=<full recompute time ÷ bare GROUP BY time>`` at N. A
slower machine gives longer times, never a failure; the figures and the conclusion about the
update are printed, not asserted.

Usage: ``.venv/bin/python bench/economics.py [--events N] [--customers C] [--late L] [--seed S]
[--keep] [--quiet]``. ``DATABASE_URL=postgres://…/metron_bench_econ`` picks the server and
(when its name contains "bench") the database.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import random
import secrets
import signal
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench` and `metron` importable
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.ingest import (  # noqa: E402
    BenchFailed,
    Database,
    database_open,
    manage,
    metron_env,
    server_version,
    settle,
)
from bench.workload import FEATURES as WORKLOAD_FEATURES  # noqa: E402
from bench.workload import MODELS as WORKLOAD_MODELS  # noqa: E402
from bench.workload import REGIONS, WORKFLOWS, Catalog, Workload, batches  # noqa: E402

LEDGER = "ingestion_usageevent"
ROLLUPS = "ingestion_dailyusage"
EMBEDDED_NAME = "metron_bench_economics"
DAYS = 30
FIRST_STEP_DAYS = 3  # the first load: N/10 events
UPDATE_DAY = 1  # the month's second day (0-based): inside the first load
PAGE_REQUESTS = 20
UNKNOWN_CUSTOMERS = 40
INTERNAL_CUSTOMERS = 20
PLAN_CHANGE_SHARE = 0.03
PRICE_TOKENS = 100_000  # quoted per token type; below every model's long-context tier

# The reference mix's models, and two more to make twelve.
MODELS = (
    *WORKLOAD_MODELS,
    ("openai", "gpt-5", 6, True, True),
    ("anthropic", "claude-opus-4-5", 3, False, True),
)
FEATURES = (
    *WORKLOAD_FEATURES,
    "contract-review", "invoice-parsing", "lead-scoring", "churn-insights", "call-summaries",
    "knowledge-base", "product-descriptions", "image-captions", "voice-transcripts",
    "compliance-check", "forecast-notes", "release-notes", "faq-bot", "resume-screening",
    "query-rewrite", "agent-planner", "survey-analysis", "alert-explainer",
)  # fmt: skip
PLANS = (  # code, name, monthly price, free
    ("free", "Free", Decimal("0"), True),
    ("starter", "Starter", Decimal("49"), False),
    ("pro", "Pro", Decimal("199"), False),
    ("team", "Team", Decimal("499"), False),
    ("enterprise", "Enterprise", Decimal("1500"), False),
)
PLAN_WEIGHTS = (40, 28, 20, 7, 5)
SEGMENTS = {"free": "self-serve", "starter": "self-serve", "pro": "smb", "team": "mid-market",
            "enterprise": "enterprise"}  # fmt: skip
INDUSTRIES = ("software", "retail", "finance", "health", "education")

QUIET = False


def say(message: str) -> None:
    if not QUIET:
        print(message, flush=True)


# --- the catalog -----------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerSpec:
    external_id: str
    plan: str
    internal: bool
    change: tuple[int, str] | None  # (day of the month, 0-based, new plan) or None
    region: str
    segment: str
    industry: str
    started_months_ago: int


@dataclass(frozen=True)
class EconomicsCatalog:
    """The organization of this benchmark, in Zipf rank order (the first customers are the
    heavy ones), and what the reference workload needs of it."""

    customers: tuple[CustomerSpec, ...]
    unknown: tuple[str, ...]  # external ids first seen in usage
    workload: Catalog  # for Workload (the late batches)
    feature_models: tuple[tuple[int, int], ...]  # per feature: (own model, second model)


def economics_catalog(*, seed: int, customers: int) -> EconomicsCatalog:
    """Deterministic per (seed, customers)."""
    rng = random.Random(f"economics-catalog-{seed}")
    codes = [code for code, *_ in PLANS]
    internal = set(rng.sample(range(customers), min(INTERNAL_CUSTOMERS, customers)))
    specs = []
    for index in range(customers):
        plan = rng.choices(codes, weights=PLAN_WEIGHTS)[0]
        change = None
        if rng.random() < PLAN_CHANGE_SHARE:
            step = 1 if rng.random() < 0.8 else -1  # mostly upgrades
            position = codes.index(plan) + step
            if not 0 <= position < len(codes):
                position = codes.index(plan) - step
            change = (rng.randrange(4, DAYS - 4), codes[position])
        specs.append(
            CustomerSpec(
                external_id=f"cust-{index:05d}", plan=plan, internal=index in internal,
                change=change, region=REGIONS[rng.randrange(len(REGIONS))],
                segment=SEGMENTS[plan], industry=INDUSTRIES[rng.randrange(len(INDUSTRIES))],
                started_months_ago=rng.randrange(1, 25),
            )
        )  # fmt: skip
    keys = tuple(
        (provider, f"key-{provider}-{index}", FEATURES[rng.randrange(len(FEATURES))])
        for provider in ("openai", "anthropic")
        for index in range(3)
    )
    weights = list(itertools.accumulate(weight for _, _, weight, _, _ in MODELS))
    feature_models = tuple(
        tuple(rng.choices(range(len(MODELS)), cum_weights=weights, k=2)) for _ in FEATURES
    )
    workload = Catalog(
        plans=PLANS,
        customers=tuple((spec.external_id, spec.plan) for spec in specs),
        features=FEATURES,
        provider_keys=keys,
    )
    unknown = tuple(f"new-cust-{seed}-{index:03d}" for index in range(UNKNOWN_CUSTOMERS))
    return EconomicsCatalog(
        customers=tuple(specs), unknown=unknown, workload=workload, feature_models=feature_models
    )


def month_after(month: date) -> date:
    return (month + timedelta(days=32)).replace(day=1)


def bench_month(today: date) -> date:
    """The latest calendar month that has ended and has at least ``DAYS`` days."""
    month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    while (month_after(month) - month).days < DAYS:
        month = (month - timedelta(days=1)).replace(day=1)
    return month


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def setup_in_shell() -> None:
    """Runs inside ``manage.py shell``: part of the setup, through the services.

    Without ``part``: the organization, plans, features, provider keys, the customers first
    seen in usage, the ops user and the read key. With ``part`` k of ``parts``: every
    ``parts``-th customer from the k-th, its plan history and its month of revenue (the
    parts run in parallel, one per core).
    """
    from accounts import services
    from accounts.models import Organization, Plan

    params = json.loads(os.environ["BENCH_SETUP"])
    spec = economics_catalog(seed=params["seed"], customers=params["customers"])
    if params.get("part") is None:
        org = services.organization_create(slug="bench", name="Bench Co")
        for code, name, price, free in PLANS:
            services.plan_create(organization=org, code=code, name=name, price=price,
                                 is_free=free)  # fmt: skip
        features = {key: services.feature_create(organization=org, key=key) for key in FEATURES}
        for provider, key_id, feature in spec.workload.provider_keys:
            services.provider_key_create(
                organization=org, provider=provider, key_id=key_id, feature=features[feature]
            )
        for external_id in spec.unknown:  # as ingest registers them: unreviewed, no plan
            services.customer_create(organization=org, external_id=external_id, needs_review=True)
        user = services.staff_user_create(
            username="bench-ops", password=secrets.token_urlsafe(16), organization=org, role="ops"
        )
        _, key = services.service_key_create(organization=org, name="bench read", scopes=["read"])
        print("BENCH_SETUP " + json.dumps({"organization": org.pk, "user": user.pk, "key": key}))
        return
    org = Organization.objects.get(slug="bench")
    plans = {plan.code: plan for plan in Plan.objects.filter(organization=org)}
    entries = _customers_create(
        org, plans, spec.customers[params["part"] :: params["parts"]], params["part"],
        params["parts"], date.fromisoformat(params["month"]),
    )  # fmt: skip
    print("BENCH_SETUP " + json.dumps({"revenue_entries": entries}))


def _customers_create(org, plans, customers, first: int, step: int, month: date) -> int:
    """Customers with their plan history and a month of recognized revenue (a manual entry
    per plan period, prorated by days); returns the number of revenue entries."""
    from accounts import services
    from ingestion.services.revenue import manual_revenue_entry_create

    following = month_after(month)
    month_days = (following - month).days
    start = datetime.combine(month, clock_time.min, tzinfo=UTC)
    since = start - timedelta(days=400)
    prices = {code: price for code, _, price, _ in PLANS}
    entries = 0
    for index, customer in zip(itertools.count(first, step), customers, strict=False):
        started = month
        for _ in range(customer.started_months_ago):
            started = (started - timedelta(days=1)).replace(day=1)
        row = services.customer_create(
            organization=org, external_id=customer.external_id, plan=plans[customer.plan],
            plan_from=since, name=f"Customer {index:05d}", region=customer.region,
            segment=customer.segment, metadata={"industry": customer.industry},
            started_on=started, is_internal=customer.internal,
        )  # fmt: skip
        periods = [(month, following, customer.plan)]
        if customer.change is not None:
            day, plan = customer.change
            switch = month + timedelta(days=day)
            services.customer_plan_assign(
                customer=row, plan=plans[plan], valid_from=start + timedelta(days=day)
            )
            periods = [(month, switch, customer.plan), (switch, following, plan)]
        if customer.internal:
            continue
        for period_start, period_end, plan in periods:
            amount = _cents(prices[plan] * (period_end - period_start).days / month_days)
            if amount:
                manual_revenue_entry_create(
                    organization=org, customer=row, period_start=period_start,
                    period_end=period_end, amount=amount, currency="USD",
                    description=f"{plan} subscription",
                )  # fmt: skip
                entries += 1
    return entries


def _shell_setup(env: dict[str, str], params: dict) -> dict:
    output = manage(
        {**env, "BENCH_SETUP": json.dumps(params)},
        "shell", "-c", "from bench.economics import setup_in_shell; setup_in_shell()",
    )  # fmt: skip
    for line in output.splitlines():
        if line.startswith("BENCH_SETUP "):
            return json.loads(line.removeprefix("BENCH_SETUP "))
    raise BenchFailed(f"setup printed no result:\n{output}")


def metron_setup(env: dict[str, str], *, seed: int, customers: int, month: date) -> dict:
    """The organization first, then its customers in one subprocess per core."""
    params = {"seed": seed, "customers": customers, "month": month.isoformat()}
    result = _shell_setup(env, params)
    parts = max(1, min(os.cpu_count() or 1, 4))
    began = time.monotonic()
    with ThreadPoolExecutor(parts) as pool:
        done = list(
            pool.map(
                lambda part: _shell_setup(env, {**params, "part": part, "parts": parts}),
                range(parts),
            )
        )
    result["revenue_entries"] = sum(part["revenue_entries"] for part in done)
    result["customer_seconds"], result["parts"] = time.monotonic() - began, parts
    return result


# --- the ledger, generated in PostgreSQL ------------------------------------------------


def _u(draw: int) -> str:
    """SQL for a uniform draw in [0, 1) of event ``g``: the ``draw``-th, deterministic."""
    return f"((hashint8extended(g, {draw}) & 9007199254740991)::float8 / 9007199254740992.0)"


def _zipf(draw: int, n: str, s: float) -> str:
    """SQL for a rank in 1..n with P(rank) ∝ rank^-s (the continuous inverse, floored)."""
    e = 1 - s
    return (
        f"least({n}::int, floor(power(1 + {_u(draw)} * (power({n}::float8, {e}::float8) - 1), "
        f"{1 / e}::float8))::int)"
    )


# Four layers, each behind OFFSET 0 so that PostgreSQL computes a draw once per row instead
# of once per reference: position in time, the draws, the catalog joins, then cost.
GENERATE = f"""
INSERT INTO {LEDGER} (organization_id, event_id, timestamp, received_at, payload_hash,
    customer_id, plan_id, user_id, feature_id, workflow, prompt_version, provider, model,
    api_key_id, provider_key_id, environment, input_tokens, output_tokens,
    cached_input_tokens, cache_write_tokens, reasoning_tokens, batch, service_tier, status,
    attempt, latency_ms, quality_score, billable, metadata, cost, reported_cost,
    estimated_cost, cost_source, cost_status, price_reference, price_date,
    attribution_source, attribution_confidence)
SELECT %(org)s, %(prefix)s || lpad(x.g::text, 9, '0'), x.ts, x.ts + interval '3 seconds',
    md5(%(prefix)s || x.g), x.customer_id, x.plan_id, x.user_id, x.feature_id, x.workflow,
    x.prompt_version, x.provider, x.model, x.api_key_id, x.provider_key_id, x.environment,
    x.input_tokens, x.output_tokens, x.cached, x.cache_write, x.reasoning, x.batch,
    x.service_tier, x.status, x.attempt, x.latency_ms, x.quality_score, x.billable, x.metadata,
    coalesce(x.reported, x.estimate), x.reported, x.estimate,
    CASE WHEN x.reported IS NOT NULL THEN 'provider_reported'
         WHEN x.estimate IS NOT NULL THEN 'price_book' ELSE '' END,
    CASE WHEN coalesce(x.reported, x.estimate) IS NULL THEN 'unpriced' ELSE 'priced' END,
    CASE WHEN x.estimate IS NULL THEN '' ELSE x.reference END,
    (x.ts AT TIME ZONE 'UTC')::date, x.attribution_source, x.attribution_confidence
FROM (
  SELECT y.*,
    round((greatest(y.input_tokens - y.cached - y.cache_write, 0) * y.in_rate
           + y.cached * y.cached_rate + y.cache_write * y.cw_rate
           + (y.output_tokens - y.reasoning) * y.out_rate + y.reasoning * y.reasoning_rate)
          * CASE WHEN y.batch OR y.service_tier = 'flex' THEN 0.5 ELSE 1 END, 12) AS estimate
  FROM (
    SELECT e.g, e.ts, c.customer_id,
      CASE WHEN c.switch_at IS NOT NULL AND e.ts >= c.switch_at THEN c.plan_last
           ELSE c.plan_first END AS plan_id,
      'u-' || c.user_rank || '-' || e.user_slot AS user_id,
      CASE WHEN e.tagged THEN f.feature_id ELSE k.feature_id END AS feature_id,
      e.workflow, e.prompt_version, m.provider, m.model,
      coalesce(k.key_id, '') AS api_key_id, k.key_pk AS provider_key_id, e.environment,
      e.input_tokens, e.output_tokens,
      CASE WHEN m.provider IN ('openai', 'anthropic') AND e.cache_draw < 0.4
           THEN floor(e.input_tokens * e.cache_share)::bigint ELSE 0 END AS cached,
      CASE WHEN m.provider = 'anthropic' AND e.write_draw < 0.1
           THEN floor((e.input_tokens - CASE WHEN e.cache_draw < 0.4
                       THEN floor(e.input_tokens * e.cache_share) ELSE 0 END)
                      * e.write_share)::bigint ELSE 0 END AS cache_write,
      CASE WHEN m.reasoning THEN floor(e.output_tokens * e.reasoning_share)::bigint
           ELSE 0 END AS reasoning,
      m.batchable AND e.batch_draw < 0.06 AS batch,
      CASE WHEN m.batchable AND e.batch_draw < 0.06 THEN ''
           WHEN m.provider = 'openai' AND e.tier_draw < 0.15
           THEN CASE WHEN e.flex_draw < 0.6 THEN 'flex' ELSE 'priority' END
           ELSE '' END AS service_tier,
      e.status, e.attempt, e.latency_ms, e.quality_score,
      e.environment = 'production' AND NOT c.internal AS billable,
      e.metadata, e.reported, m.in_rate, m.cached_rate, m.cw_rate, m.out_rate,
      m.reasoning_rate, m.reference,
      CASE WHEN e.tagged THEN e.source WHEN k.feature_id IS NOT NULL THEN 'key_mapping'
           ELSE 'unattributed' END AS attribution_source,
      CASE WHEN e.tagged THEN 'high' WHEN k.feature_id IS NOT NULL THEN 'medium'
           ELSE 'low' END AS attribution_confidence
    FROM (
      SELECT s.g,
        %(start)s::timestamptz + (s.day * 86400
          + least(greatest(s.second + {_u(1)} * 600 - 300, 0), 86399.999)) * interval '1 second'
          AS ts,
        CASE WHEN {_u(2)} < 0.01 THEN %(customers)s + 1 + floor({_u(3)} * %(unknown)s)::int
             ELSE {_zipf(4, "%(customers)s", 0.9)} END AS rank,
        {_zipf(5, "%(features)s", 0.7)} AS feature,
        {_u(6)} AS model_draw, 1 + floor({_u(7)} * 1000)::int AS model_slot,
        {_u(8)} < 0.88 AS tagged,
        {_u(9)} < 0.6 AS key_draw, floor({_u(10)} * 3)::int AS key_slot,
        CASE WHEN {_u(11)} < 0.9 THEN 'production' WHEN {_u(12)} < 0.7 THEN 'staging'
             ELSE 'development' END AS environment,
        CASE WHEN {_u(13)} < 0.02 THEN 'error' ELSE 'success' END AS status,
        least(greatest(floor(exp(ln(1500) + sqrt(-2 * ln(1 - {_u(14)}))
                                 * cos(2 * pi() * {_u(15)}))), 1), 400000)::bigint
          AS input_tokens,
        CASE WHEN {_u(13)} < 0.02 THEN 0
             ELSE least(greatest(floor(exp(ln(300) + 0.9 * sqrt(-2 * ln(1 - {_u(16)}))
                                           * cos(2 * pi() * {_u(17)}))), 1), 32000)::bigint
             END AS output_tokens,
        {_u(18)} AS cache_draw, 0.2 + {_u(19)} * 0.7 AS cache_share,
        {_u(20)} AS write_draw, 0.1 + {_u(21)} * 0.4 AS write_share,
        0.3 + {_u(22)} * 0.5 AS reasoning_share,
        {_u(23)} AS batch_draw, {_u(24)} AS tier_draw, {_u(25)} AS flex_draw,
        CASE WHEN {_u(26)} < 0.035 THEN CASE WHEN {_u(27)} < 0.85 THEN 2 ELSE 3 END
             ELSE 1 END AS attempt,
        least(floor(exp(ln(900) + 0.6 * sqrt(-2 * ln(1 - {_u(28)}))
                        * cos(2 * pi() * {_u(29)}))), 2000000000)::int AS latency_ms,
        CASE WHEN {_u(30)} < 0.3 THEN (%(workflows)s::text[])[1 + floor({_u(31)} * 4)::int]
             ELSE '' END AS workflow,
        CASE WHEN {_u(32)} < 0.5 THEN 'v' || (1 + floor({_u(33)} * 5)::int) ELSE '' END
          AS prompt_version,
        CASE WHEN {_u(34)} < 0.15 THEN round((0.4 + {_u(35)} * 0.6)::numeric, 2) END
          AS quality_score,
        CASE WHEN {_u(36)} < 0.05 THEN round((0.0001 + {_u(37)} * 0.0499)::numeric, 6) END
          AS reported,
        CASE WHEN {_u(38)} < 0.5 THEN (%(metadata)s::jsonb[])[
               1 + floor({_u(39)} * 4)::int * 3
               + CASE WHEN {_u(40)} < 0.2 THEN 1 + floor({_u(41)} * 2)::int ELSE 0 END]
             ELSE '{{}}'::jsonb END AS metadata,
        floor({_u(42)} * 60)::int AS user_slot,
        CASE WHEN {_u(43)} < 0.6 THEN 'sdk' WHEN {_u(44)} < 0.625 THEN 'proxy' ELSE 'api' END
          AS source
      FROM (
        SELECT g, (15 * (2 * g - 1)) / %(n)s AS day,
          ((15 * (2 * g - 1)) %% %(n)s)::float8 / %(n)s * 86400 AS second
        FROM generate_series(%(lo)s::bigint, %(hi)s::bigint, %(step)s::bigint) AS g
        OFFSET 0
      ) s
      OFFSET 0
    ) e
    JOIN bench_customers c ON c.rank = e.rank
    JOIN bench_features f ON f.idx = e.feature
    JOIN bench_model_pick p ON p.slot = e.model_slot
    JOIN bench_models m ON m.idx = CASE WHEN e.model_draw < 0.75 THEN f.model_a
                                        WHEN e.model_draw < 0.95 THEN f.model_b
                                        ELSE p.idx END
    LEFT JOIN bench_keys k ON k.provider = m.provider AND k.slot = e.key_slot
                          AND (e.key_draw OR NOT e.tagged)
    OFFSET 0
  ) y
  OFFSET 0
) x
"""


def _metadata_values() -> list[str]:
    """Index 1 + region × 3 + kind (0: none, 1: tool-call, 2: chat) → the event's metadata."""
    values = []
    for region in REGIONS:
        values.append(json.dumps({"region": region}))
        for kind in ("tool-call", "chat"):
            values.append(json.dumps({"region": region, "request_kind": kind}))
    return values


def model_rates(month: date) -> list[dict]:
    """Each model's list price per token type (USD per token) on the month's 15th, from the
    price book (``None``: unpriced), and the price reference the book gives."""
    from ingestion.pricing import PriceBook, TokenUsage

    book = PriceBook()
    at = datetime.combine(month + timedelta(days=14), clock_time(12), tzinfo=UTC)
    t = PRICE_TOKENS
    usages = {
        "in_rate": TokenUsage(input_tokens=t, output_tokens=0),
        "cached_rate": TokenUsage(input_tokens=t, output_tokens=0, cached_input_tokens=t),
        "cw_rate": TokenUsage(input_tokens=t, output_tokens=0, cache_write_tokens=t),
        "out_rate": TokenUsage(input_tokens=0, output_tokens=t),
        "reasoning_rate": TokenUsage(input_tokens=0, output_tokens=t, reasoning_tokens=t),
    }
    rows = []
    for index, (provider, model, _, reasoning, batchable) in enumerate(MODELS, start=1):
        row = {"idx": index, "provider": provider, "model": model, "reasoning": reasoning,
               "batchable": batchable, "reference": ""}  # fmt: skip
        for name, usage in usages.items():
            quote = book.quote(provider=provider, model=model, at=at, usage=usage)
            row[name] = None if quote is None else quote.cost / t
            if quote is not None and name == "in_rate":
                row["reference"] = quote.reference
        rows.append(row)
    return rows


def bench_tables(db: Database, *, organization: int, spec: EconomicsCatalog, month: date) -> None:
    """The lookup tables the generator joins: customers by Zipf rank with their plan at the
    start and end of the month (as the services recorded it), features with their models,
    the weighted model draw, models with their prices, provider keys."""
    start = datetime.combine(month, clock_time.min, tzinfo=UTC)
    end = start + timedelta(days=DAYS)
    ids = [c.external_id for c in spec.customers] + list(spec.unknown)
    weights = [weight for _, _, weight, _, _ in MODELS]
    total = sum(weights)
    pick, edge = [], 0.0
    for index, weight in enumerate(weights, start=1):
        edge += weight / total * 1000
        pick.extend([index] * (round(edge) - len(pick)))
    with db.connect() as conn:
        conn.execute(
            "CREATE TABLE bench_customers (rank int PRIMARY KEY, customer_id bigint, "
            "internal bool, plan_first bigint, plan_last bigint, switch_at timestamptz, "
            "user_rank int)"
        )
        plan_at = (
            "(SELECT p.plan_id FROM accounts_customerplan p WHERE p.customer_id = c.id "
            "AND p.valid_from <= {at} AND (p.valid_to IS NULL OR p.valid_to > {at}))"
        )
        conn.execute(
            f"""INSERT INTO bench_customers
                SELECT k.rank, c.id, c.is_internal, {plan_at.format(at="%(start)s")},
                  {plan_at.format(at="%(last)s")},
                  (SELECT min(p.valid_from) FROM accounts_customerplan p
                   WHERE p.customer_id = c.id AND p.valid_from > %(start)s
                     AND p.valid_from < %(end)s),
                  CASE WHEN k.rank <= %(known)s THEN k.rank ELSE 0 END
                FROM unnest(%(ids)s::text[]) WITH ORDINALITY AS k(external_id, rank)
                JOIN accounts_customer c ON c.organization_id = %(org)s
                  AND c.external_id = k.external_id""",
            {"start": start, "last": end - timedelta(microseconds=1), "end": end, "ids": ids,
             "known": len(spec.customers), "org": organization},
        )  # fmt: skip
        conn.execute(
            "CREATE TABLE bench_features (idx int PRIMARY KEY, feature_id bigint, model_a int, "
            "model_b int)"
        )
        conn.execute(
            """INSERT INTO bench_features
               SELECT k.idx, f.id, k.a + 1, k.b + 1
               FROM unnest(%s::text[], %s::int[], %s::int[]) WITH ORDINALITY AS k(key, a, b, idx)
               JOIN accounts_feature f ON f.organization_id = %s AND f.key = k.key""",
            [list(FEATURES), [a for a, _ in spec.feature_models],
             [b for _, b in spec.feature_models], organization],
        )  # fmt: skip
        conn.execute("CREATE TABLE bench_model_pick (slot int PRIMARY KEY, idx int)")
        conn.execute(
            "INSERT INTO bench_model_pick SELECT slot, idx FROM unnest(%s::int[]) "
            "WITH ORDINALITY AS k(idx, slot)",
            [pick],
        )
        conn.execute(
            "CREATE TABLE bench_models (idx int PRIMARY KEY, provider text, model text, "
            "reasoning bool, batchable bool, in_rate numeric, cached_rate numeric, "
            "cw_rate numeric, out_rate numeric, reasoning_rate numeric, reference text)"
        )
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO bench_models VALUES (%(idx)s, %(provider)s, %(model)s, "
                "%(reasoning)s, %(batchable)s, %(in_rate)s, %(cached_rate)s, %(cw_rate)s, "
                "%(out_rate)s, %(reasoning_rate)s, %(reference)s)",
                model_rates(month),
            )
        conn.execute(
            "CREATE TABLE bench_keys (provider text, slot int, key_id text, key_pk bigint, "
            "feature_id bigint, PRIMARY KEY (provider, slot))"
        )
        conn.execute(
            """INSERT INTO bench_keys
               SELECT k.provider, (row_number() OVER (PARTITION BY k.provider
                                                      ORDER BY k.key_id))::int - 1,
                 k.key_id, k.id, k.feature_id
               FROM accounts_providerkey k WHERE k.organization_id = %s""",
            [organization],
        )
        conn.execute("ANALYZE bench_customers, bench_features, bench_model_pick, bench_models, "
                     "bench_keys")  # fmt: skip


def bench_tables_drop(db: Database) -> None:
    with db.connect() as conn:
        for table in ("customers", "features", "model_pick", "models", "keys"):
            conn.execute(f"DROP TABLE IF EXISTS bench_{table}")


@dataclass
class Load:
    rows: int
    generate: float  # INSERT … SELECT, all cores
    index: float  # indexes and constraints rebuilt
    vacuum: float
    rollups: float


def _ledger_indexes(conn) -> tuple[list, list]:
    constraints = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('u', 'f')",
        [LEDGER],
    ).fetchall()
    indexes = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        [LEDGER, LEDGER],
    ).fetchall()
    return constraints, indexes


def ledger_load(
    db: Database, *, organization: int, n: int, lo: int, hi: int, month: date, seed: int,
    customers: int,
) -> Load:  # fmt: skip
    """Generate events ``lo..hi`` of ``n`` into the ledger (indexes rebuilt after), then the
    rollups of the days they fall on."""
    start = datetime.combine(month, clock_time.min, tzinfo=UTC)
    params = {
        "org": organization, "prefix": f"econ-{seed}-", "start": start, "n": n,
        "customers": customers, "unknown": UNKNOWN_CUSTOMERS, "features": len(FEATURES),
        "workflows": list(WORKFLOWS), "metadata": _metadata_values(),
    }  # fmt: skip
    with db.connect(autocommit=True) as conn:
        constraints, indexes = _ledger_indexes(conn)
        for name, _ in constraints:
            conn.execute(f'ALTER TABLE {LEDGER} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
    streams = max(1, min(os.cpu_count() or 1, 4))
    errors: list[BaseException] = []

    def stream(offset: int) -> None:
        try:
            with db.connect() as conn:
                conn.execute("SET synchronous_commit = off")
                conn.execute(GENERATE, {**params, "lo": lo + offset, "hi": hi, "step": streams})
                conn.commit()
        except psycopg.Error as error:  # reported by the caller
            errors.append(error)

    began = time.monotonic()
    # Interleaved (g mod streams), so that the streams advance through time together and a
    # day's rows stay together on disk, as ingest in time order leaves them.
    threads = [threading.Thread(target=stream, args=(k,)) for k in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise BenchFailed(f"generating the ledger failed: {errors[0]}")
    generated = time.monotonic()
    with db.connect(autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            conn.execute(definition)
        for name, definition in constraints:
            conn.execute(f'ALTER TABLE {LEDGER} ADD CONSTRAINT "{name}" {definition}')
        indexed = time.monotonic()
        # As autovacuum leaves a table that has been written: hint bits set and the
        # visibility map current, so that no timed phase pays for the load.
        conn.execute(f"VACUUM (ANALYZE) {LEDGER}")
        vacuumed = time.monotonic()
    first = (15 * (2 * lo - 1)) // n
    last = (15 * (2 * hi - 1)) // n
    rollups_build(organization=organization, days=[month + timedelta(days=d)
                                                   for d in range(first, last + 1)])  # fmt: skip
    with db.connect(autocommit=True) as conn:
        conn.execute(f"VACUUM (ANALYZE) {ROLLUPS}")
    return Load(
        rows=(hi - lo) + 1, generate=generated - began, index=indexed - generated,
        vacuum=vacuumed - indexed, rollups=time.monotonic() - vacuumed,
    )  # fmt: skip


def rollups_build(*, organization: int, days: list[date]) -> None:
    """Each day's rollups from the ledger and its UsageChange marker, one transaction a day."""
    from django.db import transaction

    from ingestion.services.rollups import rollups_rebuild

    for day in days:
        with transaction.atomic():
            rollups_rebuild(organization_id=organization, start=day, end=day + timedelta(days=1))


# --- the timed parts ----------------------------------------------------------------------

BARE_GROUP_BY = f"""
    SELECT customer_id, plan_id, feature_id, billable, count(*),
           sum(input_tokens + output_tokens), sum(cost), count(DISTINCT user_id)
    FROM {LEDGER}
    WHERE organization_id = %s AND timestamp >= %s AND timestamp < %s
    GROUP BY customer_id, plan_id, feature_id, billable
"""


def bare_group_by(db: Database, organization: int, start: datetime, end: datetime):
    """The bare GROUP BY over ``[start, end)``: (seconds, rows)."""
    settle(db)
    with db.connect() as conn:
        began = time.monotonic()
        rows = conn.execute(BARE_GROUP_BY, [organization, start, end]).fetchall()
        return time.monotonic() - began, rows


@dataclass
class Recompute:
    seconds: float
    snapshot_ms: int

    @property
    def days_seconds(self) -> float:
        return self.seconds - self.snapshot_ms / 1000


def full_recompute(db: Database, org, month: date, now: datetime) -> Recompute:
    from economics.services import economics_recompute_months

    settle(db)
    began = time.monotonic()
    snapshots = economics_recompute_months(organization=org, months=[month], now=now)
    seconds = time.monotonic() - began
    return Recompute(seconds=seconds, snapshot_ms=sum(s.duration_ms for s in snapshots))


@dataclass
class Update:
    events: int
    ingest_seconds: float
    seconds: float  # economics_refresh
    snapshots: list  # the EconomicsSnapshot rows it recomputed
    day_rows: int  # the day's ledger rows
    day_rollups: int
    day_usage_rows: int  # UsageDay rows the day rebuild wrote
    bare_seconds: float  # bare GROUP BY over the day's rows

    @property
    def snapshot_seconds(self) -> float:
        return sum(snapshot.duration_ms for snapshot in self.snapshots) / 1000

    @property
    def day_seconds(self) -> float:
        return self.seconds - self.snapshot_seconds


def late_batch(org, spec: EconomicsCatalog, *, day: date, count: int, seed: int, label: str,
               now: datetime) -> tuple[int, float]:  # fmt: skip
    """``count`` events of the reference mix for ``day``, through the ingest service as the
    API would hand them over (1,000 a call); returns (accepted, seconds)."""
    from ingestion.services.ingest import decimal_json_loads, usage_events_ingest

    workload = Workload(
        now=datetime.combine(day + timedelta(days=1), clock_time.min, tzinfo=UTC), seed=seed,
        days=1, catalog=spec.workload, id_prefix=label,
    )  # fmt: skip
    bodies = [decimal_json_loads(json.dumps(b)) for b in batches(workload.events(count), 1000)]
    accepted = 0
    began = time.monotonic()
    for body in bodies:
        result = usage_events_ingest(organization=org, raw_events=body, now=now)
        accepted += result.accepted
        if result.rejected:
            reasons = {o.reason for o in result.outcomes if o.status == "rejected"}
            raise BenchFailed(f"late batch: {result.rejected} rejected: {sorted(reasons)[:3]}")
    return accepted, time.monotonic() - began


def one_day_update(db: Database, org, spec, *, month: date, count: int, seed: int, label: str,
                   now: datetime) -> Update:  # fmt: skip
    from economics.models import UsageDay
    from economics.services import economics_refresh

    day = month + timedelta(days=UPDATE_DAY)
    accepted, ingest_seconds = late_batch(
        org, spec, day=day, count=count, seed=seed, label=label, now=now
    )
    if accepted != count:
        raise BenchFailed(f"late batch: {accepted:,} of {count:,} events accepted")
    settle(db)
    began = time.monotonic()
    refreshed = economics_refresh(organization=org, now=now)
    seconds = time.monotonic() - began
    if refreshed.days != [day]:
        raise BenchFailed(f"the refresh rebuilt {refreshed.days}, expected [{day}]")
    start = datetime.combine(day, clock_time.min, tzinfo=UTC)
    bare_seconds, _ = bare_group_by(db, org.pk, start, start + timedelta(days=1))
    with db.connect() as conn:
        day_rows = conn.execute(
            f"SELECT count(*) FROM {LEDGER} WHERE organization_id = %s AND timestamp >= %s "
            "AND timestamp < %s",
            [org.pk, start, start + timedelta(days=1)],
        ).fetchone()[0]
        day_rollups = conn.execute(
            f"SELECT count(*) FROM {ROLLUPS} WHERE organization_id = %s AND day = %s",
            [org.pk, day],
        ).fetchone()[0]
    return Update(
        events=count, ingest_seconds=ingest_seconds, seconds=seconds,
        snapshots=refreshed.snapshots,
        day_rows=day_rows, day_rollups=day_rollups,
        day_usage_rows=UsageDay.objects.filter(organization=org, day=day).count(),
        bare_seconds=bare_seconds,
    )  # fmt: skip


# --- checks ----------------------------------------------------------------------------

CHECK_FEATURES = f"""
    SELECT customer_id, plan_id, feature_id, billable, count(*),
           sum(input_tokens + output_tokens), coalesce(sum(cost), 0)
    FROM {LEDGER}
    WHERE organization_id = %s AND timestamp >= %s AND timestamp < %s
    GROUP BY customer_id, plan_id, feature_id, billable
"""
CHECK_USERS = f"""
    SELECT feature_id, plan_id, count(DISTINCT user_id) FROM {LEDGER}
    WHERE organization_id = %s AND timestamp >= %s AND timestamp < %s
      AND billable AND user_id <> ''
    GROUP BY feature_id, plan_id
"""


def _key(row) -> tuple:
    return tuple(row[:4])


def verify(
    db: Database, org, month: date, *, grouped=None, users: bool = True, rolling: bool = True
) -> list[str]:
    """The month's economics against its ledger rows; ``grouped``: rows of the bare GROUP BY
    already fetched (customer, plan, feature, billable, requests, tokens, cost, …);
    ``rolling``: the rolling 30-day snapshot is current (it covers the month's 30 days)."""
    from economics.models import (
        CustomerFeatureMonth,
        CustomerModelMonth,
        EconomicsSnapshot,
        FeatureUserMonth,
    )

    start = datetime.combine(month, clock_time.min, tzinfo=UTC)
    end = datetime.combine(month_after(month), clock_time.min, tzinfo=UTC)
    wrong = []
    with db.connect() as conn:
        requests, cost = conn.execute(
            f"SELECT count(*), coalesce(sum(cost), 0) FROM {LEDGER} WHERE organization_id = %s "
            "AND timestamp >= %s AND timestamp < %s",
            [org.pk, start, end],
        ).fetchone()
        if grouped is None:
            grouped = conn.execute(CHECK_FEATURES, [org.pk, start, end]).fetchall()
        ledger_users = None
        if users:
            ledger_users = {
                (f, p): n for f, p, n in conn.execute(CHECK_USERS, [org.pk, start, end])
            }
    snapshot = EconomicsSnapshot.objects.get(
        organization=org, kind=EconomicsSnapshot.Kind.MONTH, period_start=month
    )
    summary = snapshot.summary
    if Decimal(summary["ledger_cost"]) != cost:
        wrong.append(f"snapshot ledger_cost {summary['ledger_cost']} ≠ ledger sum(cost) {cost}")
    ai_cost = sum((row.ai_cost for row in snapshot.customers.all()), Decimal(0))
    if ai_cost + Decimal(summary["non_billable_cost"]) != cost:
        wrong.append(
            f"Σ customer ai_cost {ai_cost} + non_billable_cost {summary['non_billable_cost']} "
            f"≠ ledger sum(cost) {cost}"
        )
    if rolling:
        window = EconomicsSnapshot.objects.get(
            organization=org, kind=EconomicsSnapshot.Kind.ROLLING_30D, period_start=month
        )
        if Decimal(window.summary["ledger_cost"]) != cost:
            wrong.append(f"rolling 30 days: ledger_cost {window.summary['ledger_cost']} ≠ {cost}")
    expected = {_key(row): (row[4], row[5] or 0, row[6] or Decimal(0)) for row in grouped}
    stored = {
        _key(row): tuple(row[4:])
        for row in CustomerFeatureMonth.objects.filter(organization=org, month=month).values_list(
            "customer_id", "plan_id", "feature_id", "billable", "requests", "tokens", "cost"
        )
    }
    if stored != expected:
        differ = [k for k in expected.keys() | stored.keys() if stored.get(k) != expected.get(k)]
        wrong.append(
            f"customer × feature month: {len(differ):,} of {len(expected):,} groups differ from "
            f"the ledger, e.g. {differ[0]}: stored {stored.get(differ[0])}, ledger "
            f"{expected.get(differ[0])}"
        )
    totals = CustomerModelMonth.objects.filter(organization=org, month=month).values_list(
        "requests", "cost"
    )
    model_requests = sum(r for r, _ in totals)
    model_cost = sum((c for _, c in totals), Decimal(0))
    if (model_requests, model_cost) != (requests, cost):
        wrong.append(
            f"customer × model month: {model_requests:,} requests, {model_cost} USD; "
            f"ledger {requests:,}, {cost}"
        )
    if ledger_users is not None:
        stored_users: dict = {}
        for feature, plan in FeatureUserMonth.objects.filter(
            organization=org, month=month
        ).values_list("feature_id", "plan_id"):
            stored_users[(feature, plan)] = stored_users.get((feature, plan), 0) + 1
        if stored_users != ledger_users:
            wrong.append(
                f"active users per feature and plan differ from the ledger's distinct users "
                f"({sum(stored_users.values()):,} vs {sum(ledger_users.values()):,})"
            )
    return wrong


# --- pages -------------------------------------------------------------------------------


def page_times(path: str, *, client, headers: dict | None = None) -> tuple[float, float]:
    """p50 and p95 (seconds) of ``PAGE_REQUESTS`` GETs after one warm-up."""
    samples = []
    for attempt in range(PAGE_REQUESTS + 1):
        began = time.monotonic()
        response = client.get(path, secure=True, headers=headers or {})
        elapsed = time.monotonic() - began
        if response.status_code != 200:
            raise BenchFailed(f"GET {path} answered {response.status_code}")
        if attempt:
            samples.append(elapsed)
    cuts = statistics.quantiles(samples, n=20, method="inclusive")
    return statistics.median(samples), cuts[18]


# --- the run ---------------------------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def bench_database() -> Database:
    """DATABASE_URL's bench database, or ``metron_bench_economics`` on the embedded server
    (``metron_bench`` is bench/ingest.py's)."""
    db = database_open()
    if db.embedded is not None:
        db.url, db.name = _with_database(db.url, EMBEDDED_NAME), EMBEDDED_NAME
    return db


def django_start(env: dict[str, str]) -> None:
    """Django in this process, on the bench database, with the subprocesses' settings."""
    os.environ.update(env)
    import django

    django.setup()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def _s(seconds: float) -> str:
    return f"{seconds:,.2f} s"


def run(args: argparse.Namespace, db: Database) -> float:
    n = args.events
    started = time.monotonic()
    month = bench_month(datetime.now(UTC).date())
    start = datetime.combine(month, clock_time.min, tzinfo=UTC)
    end = datetime.combine(month_after(month), clock_time.min, tzinfo=UTC)
    now = start + timedelta(days=DAYS, hours=1)
    db.recreate()
    say(f"setup: PostgreSQL {server_version(db)}, {db.description}, database {db.name} (fresh), "
        f"{os.cpu_count()} cores")  # fmt: skip
    env = metron_env(db)
    # Development settings (unhashed static files, so the admin renders without collectstatic)
    # without DEBUG, so that no query is recorded in memory.
    env.update(METRON_ENV="development", DEBUG="0", ALLOWED_HOSTS="testserver,127.0.0.1")
    manage(env, "migrate", "--no-input")
    migrated = time.monotonic()
    setup = metron_setup(env, seed=args.seed, customers=args.customers, month=month)
    spec = economics_catalog(seed=args.seed, customers=args.customers)
    changes = sum(1 for c in spec.customers if c.change)
    say(
        f"       migrated in {migrated - started:.1f} s; through the services in "
        f"{time.monotonic() - migrated:.1f} s: {args.customers:,} customers on {len(PLANS)} "
        f"plans ({changes} change plan in the month, {INTERNAL_CUSTOMERS} internal) with "
        f"{setup['revenue_entries']:,} revenue entries ({setup['customer_seconds']:.1f} s in "
        f"{setup['parts']} processes), "
        f"{UNKNOWN_CUSTOMERS} customers first seen in usage, {len(FEATURES)} features, "
        f"{len(spec.workload.provider_keys)} provider keys"
    )
    django_start(env)
    from accounts.models import Organization

    org = Organization.objects.get(pk=setup["organization"])
    bench_tables(db, organization=org.pk, spec=spec, month=month)
    say(f"month: {month:%Y-%m}, events on days 1–{DAYS}; now = {now:%Y-%m-%d %H:%M} UTC; "
        f"{len(MODELS)} models at the price book's list prices")  # fmt: skip

    first_hi = (n + 14) // 10 - 1  # the last event of the first FIRST_STEP_DAYS days
    steps = [("N/10", 1, first_hi), ("N", first_hi + 1, n)]
    results: dict[str, tuple[Recompute, float, Update]] = {}
    late_events = 0
    for label, lo, hi in steps:
        load = ledger_load(
            db, organization=org.pk, n=n, lo=lo, hi=hi, month=month, seed=args.seed,
            customers=args.customers,
        )  # fmt: skip
        rows = rows_at(db, org.pk)
        if rows != hi + late_events:
            raise BenchFailed(f"the ledger holds {rows:,} rows, expected {hi + late_events:,}")
        say(
            f"\nledger at {label}: {rows:,} rows; generated {load.rows:,} in "
            f"{load.generate:.1f} s ({load.rows / load.generate:,.0f} rows/s), indexes "
            f"{load.index:.1f} s, VACUUM ANALYZE {load.vacuum:.1f} s, rollups "
            f"{load.rollups:.1f} s (not timed)"
        )
        full = full_recompute(db, org, month, now)
        bare_seconds, grouped = bare_group_by(db, org.pk, start, end)
        wrong = verify(db, org, month, grouped=grouped, users=False, rolling=False)
        if wrong:
            raise BenchFailed(f"after the full recompute at {label}:\n  " + "\n  ".join(wrong))
        say(
            f"full recompute: {_s(full.seconds)} (day rebuilds {_s(full.days_seconds)}, "
            f"snapshot {_s(full.snapshot_ms / 1000)}); bare GROUP BY {_s(bare_seconds)} "
            f"({len(grouped):,} groups) → ratio {full.seconds / bare_seconds:.2f}"
        )
        update = one_day_update(
            db, org, spec, month=month, count=args.late, seed=args.seed,
            label=f"late-{label.replace('/', '')}", now=now,
        )  # fmt: skip
        wrong = verify(db, org, month)
        if wrong:
            raise BenchFailed(f"after the one-day update at {label}:\n  " + "\n  ".join(wrong))
        snapshots = ", ".join(
            f"{s.kind} snapshot {_ms(s.duration_ms / 1000)}" for s in update.snapshots
        )
        say(
            f"one-day update: {update.events:,} late events for day {UPDATE_DAY + 1} ingested in "
            f"{update.ingest_seconds:.1f} s; economics_refresh {_s(update.seconds)} = day "
            f"rebuild {_s(update.day_seconds)} ({update.day_rows:,} ledger rows, "
            f"{update.day_rollups:,} rollup rows → {update.day_usage_rows:,} day rows) + "
            f"{snapshots}\n"
            f"        bare GROUP BY over the day's rows {_s(update.bare_seconds)} → ratio "
            f"{update.seconds / update.bare_seconds:.1f} (day rebuild alone "
            f"{update.day_seconds / update.bare_seconds:.1f})"
        )
        say("checked: month and rolling snapshots' ledger cost = ledger sum(cost); Σ ai_cost + "
            "non-billable = it; month tables = the ledger grouped; active users = distinct ledger "
            "users")  # fmt: skip
        late_events += update.events
        results[label] = (full, bare_seconds, update)

    (small_full, _, small), (full, bare_seconds, big) = results["N/10"], results["N"]
    from economics.models import EconomicsSnapshot

    rolling = next(s for s in big.snapshots if s.kind == EconomicsSnapshot.Kind.ROLLING_30D)
    say(
        f"\nrolling 30 days ({rolling.period_start} – {rolling.period_end}), economics_recompute "
        f"within the refresh at N: duration_ms {rolling.duration_ms:,}; "
        f"{rolling.summary['customers']:,} customers, AI cost "
        f"{Decimal(rolling.summary['ai_cost']):,.2f} USD, revenue "
        f"{Decimal(rolling.summary['revenue']):,.2f} USD; its ledger cost = the month's"
    )

    total_rows = rows_at(db, org.pk)
    growth = total_rows / first_hi
    say(
        f"\nproportionality: the ledger grew {growth:.1f}× ({first_hi:,} → {total_rows:,} rows); "
        f"the updated day held {small.day_rows:,} then {big.day_rows:,} rows.\n"
        f"  day rebuild {_s(small.day_seconds)} → {_s(big.day_seconds)} "
        f"({_elasticity(small.day_seconds, big.day_seconds, growth)}); "
        f"whole refresh {_s(small.seconds)} → {_s(big.seconds)} "
        f"({_elasticity(small.seconds, big.seconds, growth)}); "
        f"full recompute {_s(small_full.seconds)} → {_s(full.seconds)} "
        f"({_elasticity(small_full.seconds, full.seconds, growth)})"
    )
    say("  " + conclusion(small, big, growth))

    from django.test import Client

    client = Client()
    period = f"{month:%Y-%m}"
    api_p50, api_p95 = page_times(
        f"/api/v1/economics/customers/?period={period}", client=client,
        headers={"Authorization": f"Api-Key {setup['key']}"},
    )  # fmt: skip
    from accounts.models import User

    client.force_login(User.objects.get(pk=setup["user"]))
    admin_p50, admin_p95 = page_times("/admin/ingestion/usageevent/", client=client)
    say(
        f"pages at {total_rows:,} ledger rows ({PAGE_REQUESTS} requests after one, "
        f"test client in this process):\n"
        f"  GET /api/v1/economics/customers/?period={period}: p50 {_ms(api_p50)}, "
        f"p95 {_ms(api_p95)}\n"
        f"  GET /admin/ingestion/usageevent/ (ops): p50 {_ms(admin_p50)}, p95 {_ms(admin_p95)}"
    )
    say(
        f"\nfull recompute {_s(full.seconds)} ÷ bare GROUP BY {_s(bare_seconds)}; whole run "
        f"{(time.monotonic() - started) / 60:.1f} min"
    )
    return full.seconds / bare_seconds


def rows_at(db: Database, organization: int) -> int:
    with db.connect() as conn:
        return conn.execute(
            f"SELECT count(*) FROM {LEDGER} WHERE organization_id = %s", [organization]
        ).fetchone()[0]


def _exponent(before: float, after: float, growth: float) -> float:
    """k in time ∝ ledger rows^k: 0 when the time does not depend on the ledger's size, 1
    when it grows in proportion to it."""
    return math.log(after / before) / math.log(growth)


def _elasticity(before: float, after: float, growth: float) -> str:
    return f"×{after / before:.2f}, ∝ ledger^{_exponent(before, after, growth):.2f}"


def conclusion(small: Update, big: Update, growth: float) -> str:
    """What the update's numbers support, in words (reported, not a pass/fail)."""
    day = _exponent(small.day_seconds, big.day_seconds, growth)
    whole = _exponent(small.seconds, big.seconds, growth)
    if day < 0.25:
        text = (
            f"The day rebuild follows the rows it touches (the whole day, {big.day_rows:,} "
            f"rows, of which {big.events:,} new), not the ledger: the same day with "
            f"{growth:.0f}× the ledger took ×{big.day_seconds / small.day_seconds:.2f} the time"
        )
    else:
        text = (
            f"The day rebuild grew with the ledger (∝ ledger^{day:.2f}) for the same day: it "
            "does not follow only the rows it touches"
        )
    if whole < 0.25:
        return text + "; so does the whole refresh, snapshots included."
    return (
        text + f". The whole refresh grew ∝ ledger^{whole:.2f}: its snapshots "
        f"({small.snapshot_seconds:.1f} s at N/10, {big.snapshot_seconds:.1f} s at N) read the "
        "period's aggregates, which grow with the distinct customers, features and users the "
        "ledger holds, not with the rows the update touched."
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="ledger rows (10,000,000)")
    parser.add_argument("--customers", type=int, default=10_000, help="customers (10,000)")
    parser.add_argument("--late", type=int, default=5_000, help="late events per update (5,000)")
    parser.add_argument("--seed", type=int, default=0, help="workload seed (0)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--quiet", action="store_true", help="print only the ratio")
    args = parser.parse_args(argv)
    if args.events < 100 or args.customers < INTERNAL_CUSTOMERS or args.late < 1:
        parser.error(f"--events ≥ 100, --customers ≥ {INTERNAL_CUSTOMERS}, --late ≥ 1")
    return args


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    global QUIET
    args = parse_args(argv)
    QUIET = args.quiet
    signal.signal(signal.SIGTERM, _interrupted)
    db: Database | None = None
    try:
        db = bench_database()
        ratio = run(args, db)
    except BenchFailed as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if db is not None:
            if args.keep:
                say(f"kept database {db.name}: {db.url}")
            else:
                with contextlib.suppress(psycopg.Error):
                    bench_tables_drop(db)
                    db.drop()
            db.release()
    print(f"economics_ratio={ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
