"""Reconciliation: the ledger's estimate against the provider's usage and bill.

For one organization, provider and range of UTC days, three sides are aggregated in SQL
per (day, model, key): the ledger (``UsageEvent``), the provider's daily usage buckets
(priced by Metron's price book at sync time) and its cost lines (what it bills). Models are
compared under their canonical genai-prices name (``gpt-4o-2024-08-06`` and ``gpt-4o`` are
one model). The result replaces the range's ``ReconciliationLine`` rows: a recomputable
projection, never edited. Variance, flag and explanation come from
:mod:`ingestion.reconciliation_math`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from genai_prices import data_snapshot

from accounts.models import Organization, ProviderKey
from ingestion.models import (
    ProviderConnection,
    ProviderCostLine,
    ProviderUsageBucket,
    ReconciliationLine,
    SyncRun,
    UsageEvent,
)
from ingestion.models.providers import DEFAULT_TOLERANCE_PERCENT
from ingestion.reconciliation_math import (
    EMPTY,
    NON_TOKEN,
    UNATTRIBUTED,
    ZERO,
    Usage,
    allocate_reconciled_cost,
    normalize_tier,
    reconcile,
)
from ingestion.services.rollups import usage_changes_record
from ingestion.services.sync_runs import (
    sync_run_claim,
    sync_run_create,
    sync_run_fail,
    sync_run_progress,
    sync_run_succeed,
)

DEFAULT_DAYS = 7
TOKEN_COST_TYPES = ("", "tokens")
Level = ReconciliationLine.Level
Basis = ReconciliationLine.InvoicedBasis


@lru_cache(maxsize=4096)
def canonical_model(provider: str, model: str) -> str:
    """The genai-prices id of ``model`` (snapshot names fold into their model), else itself."""
    if not model:
        return ""
    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider, None)
    except LookupError:
        return model
    return info.id


def _day_bounds(since: date, until: date) -> tuple[datetime, datetime]:
    return (
        datetime.combine(since, time.min, tzinfo=UTC),
        datetime.combine(until, time.min, tzinfo=UTC),
    )


def _ledger(organization, provider, since, until) -> dict[tuple, Usage]:
    """(day, model, key) → ledger usage, one GROUP BY over the range's events."""
    start, end = _day_bounds(since, until)
    rows = (
        UsageEvent.objects.filter(
            organization=organization, provider=provider, timestamp__gte=start, timestamp__lt=end
        )
        .annotate(day=TruncDate("timestamp", tzinfo=UTC))
        .values("day", "model", "api_key_id", "batch", "service_tier")
        .annotate(
            requests=Count("id"),
            input=Sum("input_tokens"),
            cached=Sum("cached_input_tokens"),
            written=Sum("cache_write_tokens"),
            output=Sum("output_tokens"),
            priced_cost=Sum("cost"),
            unpriced=Count("id", filter=Q(cost__isnull=True)),
        )  # fmt: skip
        .order_by()
    )
    cells: dict[tuple, Usage] = defaultdict(lambda: EMPTY)
    for row in rows:
        key = (row["day"], canonical_model(provider, row["model"]), row["api_key_id"])
        tier = normalize_tier(row["service_tier"], row["batch"])
        cells[key] += Usage(
            requests=row["requests"], input_tokens=row["input"], cached_input_tokens=row["cached"],
            cache_write_tokens=row["written"], output_tokens=row["output"],
            cost=row["priced_cost"] or ZERO, unpriced=row["unpriced"],
            tiers={tier: row["input"] + row["output"]},
        )  # fmt: skip
    return cells


def _provider_usage(organization, provider, since, until) -> dict[tuple, Usage]:
    """(day, model, key) → the provider's daily buckets, priced as stored."""
    start, end = _day_bounds(since, until)
    rows = (
        ProviderUsageBucket.objects.filter(
            organization=organization,
            provider=provider,
            bucket_width="1d",
            bucket_start__gte=start,
            bucket_start__lt=end,
        )
        .values("bucket_start", "model", "api_key_id", "batch", "service_tier")
        .annotate(
            requests=Sum("requests"),
            input=Sum("input_tokens"),
            cached=Sum("cached_input_tokens"),
            written=Sum("cache_write_tokens"),
            output=Sum("output_tokens"),
            cost=Sum("estimated_cost"),
            unpriced=Count("id", filter=Q(estimated_cost__isnull=True)),
        )  # fmt: skip
        .order_by()
    )
    cells: dict[tuple, Usage] = defaultdict(lambda: EMPTY)
    for row in rows:
        day = row["bucket_start"].astimezone(UTC).date()
        key = (day, canonical_model(provider, row["model"]), row["api_key_id"])
        tier = normalize_tier(row["service_tier"], row["batch"])
        cells[key] += Usage(
            requests=row["requests"], input_tokens=row["input"], cached_input_tokens=row["cached"],
            cache_write_tokens=row["written"], output_tokens=row["output"],
            cost=None if row["unpriced"] else (row["cost"] or ZERO),
            tiers={tier: row["input"] + row["output"]},
        )  # fmt: skip
    return cells


@dataclass
class _Invoice:
    by_model: dict[tuple, Decimal]  # (day, model) → USD
    by_key: dict[tuple, Decimal]  # (day, model, key) → USD, where lines carry a key
    pool: dict[date, Decimal]  # day → token charges without a model: allocated by usage
    other: dict[date, Decimal]  # day → non-token charges without a model
    keyed_days: set[date]
    foreign_currency_lines: int


def _invoice(organization, provider, since, until) -> _Invoice:
    rows = (
        ProviderCostLine.objects.filter(
            organization=organization, provider=provider, day__gte=since, day__lt=until
        )
        .values("day", "model", "api_key_id", "cost_type", "currency")
        .annotate(amount=Sum("amount"))
        .order_by()
    )
    invoice = _Invoice(defaultdict(Decimal), defaultdict(Decimal), defaultdict(Decimal),
                       defaultdict(Decimal), set(), 0)  # fmt: skip
    for row in rows:
        if row["currency"] != "USD":
            invoice.foreign_currency_lines += 1  # never added to dollars without a rate
            continue
        day, amount = row["day"], row["amount"]
        model = canonical_model(provider, row["model"])
        if model:
            invoice.by_model[day, model] += amount
            if row["api_key_id"]:
                invoice.by_key[day, model, row["api_key_id"]] += amount
                invoice.keyed_days.add(day)
        elif row["cost_type"] in TOKEN_COST_TYPES:
            invoice.pool[day] += amount
        else:
            invoice.other[day] += amount
    return invoice


def _synced_days(organization, provider, since: date, until: date) -> set[date]:
    """Days wholly inside a successful daily usage sync: the provider's word on them is in."""
    start, end = _day_bounds(since, until)
    runs = SyncRun.objects.filter(
        organization=organization, kind=SyncRun.Kind.PROVIDER_USAGE, source=provider,
        status=SyncRun.Status.SUCCEEDED, cursor__width="1d", range_start__lt=end,
        range_end__gt=start,
    ).values_list("range_start", "range_end")  # fmt: skip
    days = set()
    for run_start, run_end in runs:
        day = max(run_start, start).astimezone(UTC).date()
        if datetime.combine(day, time.min, tzinfo=UTC) < run_start:
            day += timedelta(days=1)
        while (
            day < until
            and datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC) <= run_end
        ):
            days.add(day)
            day += timedelta(days=1)
    return days


@dataclass(frozen=True)
class ReconciliationResult:
    lines: int
    flagged: int
    flagged_models: list[tuple[date, str]]


def _tolerance(organization, provider) -> Decimal:
    value = (
        ProviderConnection.objects.filter(organization=organization, provider=provider)
        .values_list("tolerance_percent", flat=True)
        .first()
    )
    return DEFAULT_TOLERANCE_PERCENT if value is None else value


def _line(*, level, key, ledger: Usage, usage: Usage | None, verdict, **fields):
    """A reconciliation row from both sides' figures and the verdict on them."""
    return ReconciliationLine(
        level=level, api_key_id=key, ledger_requests=ledger.requests or 0,
        ledger_input_tokens=ledger.input_tokens,
        ledger_cached_input_tokens=ledger.cached_input_tokens,
        ledger_cache_write_tokens=ledger.cache_write_tokens,
        ledger_output_tokens=ledger.output_tokens, ledger_unpriced_requests=ledger.unpriced,
        ledger_cost=ledger.cost or ZERO,
        provider_requests=usage.requests if usage else None,
        provider_input_tokens=usage.input_tokens if usage else 0,
        provider_cached_input_tokens=usage.cached_input_tokens if usage else 0,
        provider_cache_write_tokens=usage.cache_write_tokens if usage else 0,
        provider_output_tokens=usage.output_tokens if usage else 0,
        provider_usage_cost=usage.cost if usage else None,
        variance=verdict.variance, variance_percent=verdict.variance_percent,
        token_variance_percent=verdict.token_variance_percent, flagged=verdict.flagged,
        reasons=list(verdict.reasons), explanation=verdict.explanation, **fields,
    )  # fmt: skip


@transaction.atomic
def reconciliation_compute(
    *, organization: Organization, provider: str, since: date, until: date
) -> ReconciliationResult:
    """Recompute the reconciliation lines of ``provider`` for days ``[since, until)``.

    Writes one ``model``-level line per (day, model) seen on any side and one ``key``-level
    line per (day, model, key). Invoiced cost per model comes from cost lines naming the
    model; token charges naming no model are allocated over the day's models in proportion
    to their usage cost; other charges (web search, code execution) get a line of their own
    (empty model). Days the provider reported nothing for are listed, not judged.
    """
    tolerance = _tolerance(organization, provider)
    ledger = _ledger(organization, provider, since, until)
    usage = _provider_usage(organization, provider, since, until)
    invoice = _invoice(organization, provider, since, until)
    synced_days = _synced_days(organization, provider, since, until) | {d for d, _, _ in usage}
    key_ids = {key for _, _, key in (*ledger, *usage) if key}
    provider_keys = dict(
        ProviderKey.objects.filter(
            organization=organization, provider=provider, key_id__in=key_ids
        ).values_list("key_id", "pk")
    )

    # (day, model) → {key: (ledger, usage)}
    cells: dict[tuple, dict[str, tuple[Usage, Usage | None]]] = defaultdict(dict)
    for day, model, key in set(ledger) | set(usage):
        cells[day, model][key] = (
            ledger.get((day, model, key), EMPTY),
            usage.get((day, model, key)),
        )
    for day, model in invoice.by_model:
        cells.setdefault((day, model), {})

    pool_shares = _allocate_pools(invoice, usage)
    lines: list[ReconciliationLine] = []
    flagged_models = []
    for (day, model), keys in sorted(cells.items()):
        common = {"organization": organization, "provider": provider, "day": day,
                  "model": model, "tolerance_percent": tolerance}  # fmt: skip
        synced = day in synced_days
        ledger_total = sum((lg for lg, _ in keys.values()), EMPTY)
        usage_total = sum((us or EMPTY for _, us in keys.values()), EMPTY) if synced else None
        # Events without a key id may be any key's: then no key can be called dark.
        unkeyed = keys.get("", (EMPTY, None))[0].tokens > 0
        uninstrumented, dark_keys = EMPTY, []
        if not unkeyed or not ledger_total.tokens:
            for key, (lg, us) in sorted(keys.items()):
                if us is not None and us.tokens and not lg.tokens:
                    uninstrumented += us
                    dark_keys.append(key)
        invoiced, basis = _invoiced(invoice, pool_shares, day, model)
        verdict = reconcile(
            ledger=ledger_total, provider=usage_total, invoiced=invoiced, tolerance=tolerance,
            uninstrumented=uninstrumented, uninstrumented_keys=tuple(dark_keys),
            unkeyed_ledger=unkeyed,
        )  # fmt: skip
        lines.append(
            _line(
                level=Level.MODEL,
                key="",
                ledger=ledger_total,
                usage=usage_total,
                verdict=verdict,
                invoiced_cost=invoiced,
                invoiced_basis=basis,
                uninstrumented_cost=uninstrumented.cost or ZERO,
                **common,
            )
        )
        if verdict.flagged:
            flagged_models.append((day, model))
        for key, (lg, us) in sorted(keys.items()):
            key_usage = (us or EMPTY) if synced else None
            dark = bool(key_usage is not None and key_usage.tokens and not lg.tokens)
            key_invoiced = None
            if day in invoice.keyed_days:
                key_invoiced = invoice.by_key.get((day, model, key))
            verdict = reconcile(
                ledger=lg, provider=key_usage, invoiced=key_invoiced, tolerance=tolerance,
                uninstrumented=key_usage if dark and not unkeyed else EMPTY,
                uninstrumented_keys=(key,), unkeyed_ledger=unkeyed, judge=not unkeyed,
            )  # fmt: skip
            lines.append(
                _line(
                    level=Level.KEY,
                    key=key,
                    ledger=lg,
                    usage=key_usage,
                    verdict=verdict,
                    provider_key_id=provider_keys.get(key),
                    invoiced_cost=key_invoiced,
                    invoiced_basis=Basis.KEY if key_invoiced is not None else Basis.NONE,
                    uninstrumented_cost=(key_usage.cost or ZERO) if dark else ZERO,
                    **common,
                )
            )
    # Charges no model or token count explains: one visible line per day, never spread.
    no_model = {line.day: line for line in lines if line.level == Level.MODEL and not line.model}
    for day, amount in sorted(invoice.other.items()):
        line = no_model.get(day)
        if line is None:
            line = ReconciliationLine(
                organization=organization, provider=provider, day=day, model="",
                level=Level.MODEL, variance=ZERO, tolerance_percent=tolerance, explanation="",
            )  # fmt: skip
            lines.append(line)
        line.invoiced_cost = (line.invoiced_cost or ZERO) + amount
        line.invoiced_basis = Basis.DAY
        line.variance += amount
        line.reasons = [*line.reasons, NON_TOKEN]
        line.explanation = (
            f"{line.explanation} Non-token charges (web search, code execution, …) of "
            f"${amount}: no ledger counterpart."
        ).strip()

    ReconciliationLine.objects.filter(
        organization=organization, provider=provider, day__gte=since, day__lt=until
    ).delete()
    ReconciliationLine.objects.bulk_create(lines, batch_size=1000)
    return ReconciliationResult(
        lines=len(lines), flagged=sum(line.flagged for line in lines),
        flagged_models=flagged_models,
    )  # fmt: skip


def _allocate_pools(invoice: _Invoice, usage: dict[tuple, Usage]) -> dict[tuple, Decimal]:
    """(day, model) → its share of the day's model-less token charges, by usage cost."""
    shares: dict[tuple, Decimal] = {}
    for day, amount in invoice.pool.items():
        weights: dict[str, Decimal] = defaultdict(Decimal)
        tokens: dict[str, Decimal] = defaultdict(Decimal)
        for (d, model, _), us in usage.items():
            if d == day:
                weights[model] += us.cost or ZERO
                tokens[model] += us.tokens
        basis = weights if any(weights.values()) else tokens
        for model, share in allocate_reconciled_cost(invoiced=amount, ledger_costs=basis).items():
            if model != UNATTRIBUTED:
                shares[day, model] = share
            else:
                invoice.other[day] += share  # nothing to weigh it by: kept visible as other
    return shares


def _invoiced(invoice: _Invoice, pool: dict[tuple, Decimal], day, model):
    named = invoice.by_model.get((day, model))
    allocated = pool.get((day, model))
    if named is None and allocated is None:
        return None, Basis.NONE
    if allocated is None:
        return named, Basis.MODEL
    return (named or ZERO) + allocated, Basis.DAY


# --- runs -------------------------------------------------------------------------------


def reconciliation_run(
    *,
    organization: Organization,
    provider: str,
    since: date | None = None,
    until: date | None = None,
    days: int = DEFAULT_DAYS,
) -> SyncRun:
    """Reconcile ``[since, until)`` (default: the ``days`` full UTC days before today), as a run."""
    until = until or datetime.now(UTC).date()
    since = since or (until - timedelta(days=days))
    run = sync_run_create(
        organization=organization, kind=SyncRun.Kind.RECONCILIATION, source=provider,
        range_start=datetime.combine(since, time.min, tzinfo=UTC),
        range_end=datetime.combine(until, time.min, tzinfo=UTC),
    )  # fmt: skip
    run = sync_run_claim(run_id=run.pk)
    try:
        result = reconciliation_compute(
            organization=organization, provider=provider, since=since, until=until
        )
    except BaseException as error:
        sync_run_fail(run=run, error=f"{type(error).__name__}: {error}")
        raise
    sync_run_progress(run=run, pages=1, items=result.lines, cursor={"flagged": result.flagged})
    # Invoiced amounts feed reconciled cost: the days are to be re-allocated.
    usage_changes_record(organization_id=organization.pk, start=since, end=until)
    sync_run_succeed(run=run)
    run.refresh_from_db()
    return run
