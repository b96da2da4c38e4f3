"""What one ledger event cost, in USD: list prices from genai-prices plus organization overrides.

Build a :class:`PriceBook` once per batch of events (one query for the organization's
overrides), then call :meth:`PriceBook.quote` per event. The hot path does no database
or library work: list prices are resolved once per (provider, model, UTC day, batch, service
tier) into per-token-type unit prices and kept in a module-level LRU cache; linear models
are then priced with plain ``Decimal`` arithmetic. Models with context-size tiers are handed
to the library's own ``ModelPrice.calc_price`` for that event.

Token types (ledger convention = OpenAI's): uncached input = input − cached − cache write;
plain output = output − reasoning. Each token is priced once. A known model without a
separate cached-input or cache-write price charges those tokens as input (as the library
does); reasoning tokens are output unless the model lists a reasoning price. Anthropic's
1-hour cache writes are priced at the (5-minute) cache-write rate, since the ledger does
not split writes by TTL; web searches and other non-token units are not part of an event.

Batch and service tier: when the library lists a price variant for the model that matches
the request context and is active on the day (``{"processing": "batch"}`` or
``{"service_tier": tier}``), its prices are used; otherwise Metron applies its own multiplier
to the standard price: batch ×0.5 (OpenAI and Anthropic Batch APIs are 50% off), OpenAI
``flex`` ×0.5, and any other tier (``priority``, ``auto``, ``default``, ``standard`` …) is
priced at the standard price and the reference says so. ``service_tier="batch"``
(Anthropic) means batch; with batch the service tier is ignored.

Unpriced (``None``, never $0): an unknown model with no override, or an event using a token
type that has no price. A model the library lists without any price at all (OpenRouter
``:free`` models, OpenAI moderation, Gemma on Google) is free. Overrides: see :class:`PriceBook`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Final, NamedTuple, Protocol

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import (
    ModelInfo,
    ModelPrice,
    Provider,
    Tier,
    TieredPrices,
    TimeOfDateConstraint,
)

from ingestion.models import CostSource, PriceOverride
from metron.money import COST_DECIMAL_PLACES

GENAI_PRICES_VERSION: Final = genai_prices.__version__
BATCH_MULTIPLIER: Final = Decimal("0.5")
FLEX_MULTIPLIER: Final = Decimal("0.5")  # OpenAI's flex tier
FLEX_PROVIDERS: Final = frozenset({"openai"})
REFERENCE_MAX_LENGTH: Final = 255  # UsageEvent.price_reference

_ONE = Decimal(1)
_HUNDRED = Decimal(100)
_COST_QUANTUM = Decimal(1).scaleb(-COST_DECIMAL_PLACES)
_PRICE_BOOK = CostSource.PRICE_BOOK.value
_OVERRIDE = CostSource.OVERRIDE.value

Price = Decimal | TieredPrices


def quantize_cost(value: Decimal) -> Decimal:
    """Round a USD event cost to ``COST_DECIMAL_PLACES`` (12) places, half-up, once."""
    return value.quantize(_COST_QUANTUM, rounding=ROUND_HALF_UP)


ZERO_COST: Final = quantize_cost(Decimal(0))


class TokenCounts(Protocol):
    """Token counts in the ledger convention, already validated (a ``TokenUsage``, or a
    parsed event: ingest prices it as is rather than copying five ints per event)."""

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Token counts of one event, in the ledger convention (OpenAI's).

    ``input_tokens`` includes cached and cache-write tokens; ``output_tokens`` includes
    reasoning tokens. Counts are non-negative ints; subsets never exceed their total.
    """

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def __post_init__(self) -> None:
        for name in (
            "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens",
            "reasoning_tokens",
        ):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        if self.cached_input_tokens + self.cache_write_tokens > self.input_tokens:
            raise ValueError(
                f"cached_input_tokens ({self.cached_input_tokens}) + cache_write_tokens "
                f"({self.cache_write_tokens}) exceed input_tokens ({self.input_tokens}): "
                "input_tokens must include cached and cache-write tokens"
            )
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError(
                f"reasoning_tokens ({self.reasoning_tokens}) exceed output_tokens "
                f"({self.output_tokens}): output_tokens must include reasoning tokens"
            )


class PriceQuote(NamedTuple):
    """The priced cost of one event (a named tuple: one is made per event ingested)."""

    cost: Decimal  # USD, quantized to 12 places
    source: str  # CostSource value: price_book or override
    reference: str  # which prices were applied, human-readable
    price_date: date  # the UTC date whose prices were used


@dataclass(frozen=True, slots=True)
class _Rates:
    """USD per million tokens for each ledger token type (``None``: no price for that type)."""

    input: Price | None
    cached_input: Price | None
    cache_write: Price | None
    output: Price | None
    reasoning: Price | None
    request_fee: Decimal  # USD per request (a few models charge one)
    reference: str
    tiered: ModelPrice | None  # set when a price depends on the context size: the library prices

    def cost(self, usage: TokenCounts) -> Decimal | None:
        """USD cost of ``usage`` (quantized), or ``None`` when a used token type has no price."""
        input_tokens = usage.input_tokens
        output_tokens = usage.output_tokens
        if not input_tokens and not output_tokens:
            return ZERO_COST
        cached = usage.cached_input_tokens
        written = usage.cache_write_tokens
        reasoning = usage.reasoning_tokens
        uncached = input_tokens - cached - written
        plain_output = output_tokens - reasoning
        if (
            (uncached and self.input is None)
            or (cached and self.cached_input is None)
            or (written and self.cache_write is None)
            or (plain_output and self.output is None)
            or (reasoning and self.reasoning is None)
        ):
            return None
        rates = (self.input, self.cached_input, self.cache_write, self.output, self.reasoning)
        if self.tiered is not None:
            # The library's rule, without its 40 µs per call: the whole request pays the
            # tier its total input reaches (a cliff, not marginal bands).
            rates = tuple(_tier_rate(rate, input_tokens) for rate in rates)
        input_rate, cached_rate, write_rate, output_rate, reasoning_rate = rates
        total = Decimal(0)
        if uncached:
            total += uncached * input_rate
        if cached:
            total += cached * cached_rate
        if written:
            total += written * write_rate
        if plain_output:
            total += plain_output * output_rate
        if reasoning:
            total += reasoning * reasoning_rate
        total = total.scaleb(-6)
        if self.request_fee:
            total += self.request_fee
        return quantize_cost(total)


def _tier_rate(price: Price | None, total_input_tokens: int) -> Decimal | None:
    """The rate of a possibly tiered price for a request of ``total_input_tokens``."""
    if not isinstance(price, TieredPrices):
        return price
    for tier in reversed(price.tiers):
        if total_input_tokens > tier.start:
            return tier.price
    return price.base


def _library_model_price(
    input_: Price | None,
    cached: Price | None,
    written: Price | None,
    output: Price | None,
    reasoning: Price | None,
    request_fee: Decimal,
) -> ModelPrice:
    """Our unit prices as a library ``ModelPrice``, so that it selects the context tier."""
    # The parent of any priced subset must be priced too, or the library refuses.
    prices: dict[str, Price] = {
        "input_mtok": Decimal(0) if input_ is None else input_,
        "output_mtok": Decimal(0) if output is None else output,
    }
    for key, price in (
        ("cache_read_mtok", cached),
        ("cache_write_mtok", written),
        ("output_reasoning_mtok", reasoning),
    ):
        if price is not None:
            prices[key] = price
    if request_fee:
        prices["requests_kcount"] = request_fee * 1000
    return ModelPrice(**prices)


@dataclass(frozen=True, slots=True)
class _ListPrice:
    """A model's list prices for one day and request context, before Metron's multiplier."""

    prices: ModelPrice
    factor: Decimal  # Metron multiplier still to apply (1 when a price variant matched)
    reference: str
    free: bool  # listed without any price (OpenRouter ":free", OpenAI moderation …)


_TOKEN_PRICE_KEYS: Final = ("input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok")
_TIME_DEPENDENT: Final = object()  # prices change within the day: resolve per event


def _context(batch: bool, tier: str) -> dict[str, str]:
    if batch:
        return {"processing": "batch"}
    if tier:
        return {"service_tier": tier}
    return {}


def _metron_factor(provider: str, batch: bool, tier: str) -> tuple[Decimal, str]:
    """Metron's multiplier on a standard price for the context, and how to say so."""
    provider = provider.strip().lower()
    if batch:
        return BATCH_MULTIPLIER, f"batch ×{BATCH_MULTIPLIER}"
    if not tier:
        return _ONE, ""
    if tier == "flex" and provider in FLEX_PROVIDERS:
        return FLEX_MULTIPLIER, f"service tier flex ×{FLEX_MULTIPLIER}"
    return _ONE, f"service tier {tier} at standard price"


def _find_model(provider: str, model: str) -> tuple[Provider, ModelInfo] | None:
    try:
        return data_snapshot.get_snapshot().find_provider_model(model, None, provider, None)
    except LookupError:
        return None


def _is_time_dependent(info: ModelInfo) -> bool:
    constraints = [v.constraint for v in info.price_variants or ()]
    if not isinstance(info.prices, ModelPrice):
        constraints += [c.constraint for c in info.prices]
    return any(isinstance(c, TimeOfDateConstraint) for c in constraints)


def _resolve_list_price(
    provider: str, model: str, at: datetime, batch: bool, tier: str, *, whole_day: bool
) -> _ListPrice | None | object:
    """List prices of ``model`` at ``at`` for the context; ``None`` when the model is unknown.

    With ``whole_day``, a model whose prices change within a day gives ``_TIME_DEPENDENT``.
    """
    found = _find_model(provider, model)
    if found is None:
        return None
    listing, info = found
    if whole_day and _is_time_dependent(info):
        return _TIME_DEPENDENT
    context = _context(batch, tier)
    # Like the library, variants apply only to a provider's own models, not fallbacks.
    variant = bool(context) and any(m is info for m in listing.models) and any(
        (v.constraint is None or v.constraint.active(at))
        and all(context.get(key) == value for key, value in v.when.items())
        for v in info.price_variants or ()
    )  # fmt: skip
    prices = info.get_prices(at, context if variant else None)
    if variant:
        factor = _ONE
        note = "batch price variant" if batch else f"service tier {tier} price variant"
    else:
        factor, note = _metron_factor(provider, batch, tier)
    free = all(v is None for k, v in prices.__dict__.items() if not k.startswith("_"))
    reference = f"genai-prices {GENAI_PRICES_VERSION} {listing.id}/{info.id} {at.date()}"
    if free:
        reference += " (listed free)"
    return _ListPrice(prices, factor, f"{reference}, {note}" if note else reference, free)


@lru_cache(maxsize=8192)
def _list_price_for_day(
    provider: str, model: str, day: date, batch: bool, tier: str
) -> _ListPrice | None | object:
    """Cached :func:`_resolve_list_price` for a whole UTC day."""
    at = datetime.combine(day, time.min, tzinfo=UTC)
    return _resolve_list_price(provider, model, at, batch, tier, whole_day=True)


def _scale(price: Price, factor: Decimal) -> Price:
    if factor == _ONE:
        return price
    if isinstance(price, TieredPrices):
        return TieredPrices(
            base=price.base * factor,
            tiers=[Tier(start=t.start, price=t.price * factor) for t in price.tiers],
        )
    return price * factor


def _listed(listed: _ListPrice | None, key: str, keep: Decimal) -> Price | None:
    if listed is None:
        return None
    if listed.free:
        return Decimal(0)
    price = getattr(listed.prices, key)
    return None if price is None else _scale(price, listed.factor * keep)


def _build_rates(
    listed: _ListPrice | None,
    override: _Override | None,
    factor: Decimal,
    reference: str,
) -> _Rates:
    """Unit prices from the list price and, when given, an override on top of it."""
    keep = _ONE if override is None else override.keep
    explicit = (None,) * 4 if override is None else override.prices
    input_, cached, written, output = (
        _listed(listed, key, keep) if price is None else price * factor
        for price, key in zip(explicit, _TOKEN_PRICE_KEYS, strict=True)
    )
    # An explicit output price covers all output tokens, reasoning included.
    reasoning = None
    if explicit[3] is None:
        reasoning = _listed(listed, "output_reasoning_mtok", keep)
    if reasoning is None:
        reasoning = output
    if listed is not None:
        # A known model without its own cache prices charges those tokens as input. For an
        # unknown model every type used must be priced explicitly.
        cached = input_ if cached is None else cached
        written = input_ if written is None else written
    fee = _listed(listed, "requests_kcount", keep)
    fee = Decimal(0) if fee is None else fee / 1000
    prices = (input_, cached, written, output, reasoning)
    tiered = None
    if any(isinstance(p, TieredPrices) for p in prices):
        tiered = _library_model_price(*prices, fee)
    return _Rates(
        input=input_,
        cached_input=cached,
        cache_write=written,
        output=output,
        reasoning=reasoning,
        request_fee=fee,
        reference=reference[:REFERENCE_MAX_LENGTH],
        tiered=tiered,
    )


def _rates_from_list(listed: _ListPrice | None) -> _Rates | None:
    return None if listed is None else _build_rates(listed, None, _ONE, listed.reference)


@lru_cache(maxsize=8192)
def _list_rates_for_day(
    provider: str, model: str, day: date, batch: bool, tier: str
) -> _Rates | None | object:
    """Cached unit prices of a model for a UTC day and context, without overrides."""
    listed = _list_price_for_day(provider, model, day, batch, tier)
    return listed if listed is None or listed is _TIME_DEPENDENT else _rates_from_list(listed)


def clear_price_cache() -> None:
    """Forget cached list prices (after installing a different genai-prices snapshot)."""
    _list_rates_for_day.cache_clear()
    _list_price_for_day.cache_clear()


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.IGNORECASE)


def _number(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _decimal(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@dataclass(frozen=True, slots=True)
class _Override:
    """A ``PriceOverride`` row reduced to what quoting needs."""

    pk: int | None
    label: str
    provider: str
    pattern: str
    exact: bool
    regex: re.Pattern[str] | None
    start: datetime
    end: datetime | None
    input: Decimal | None
    cached_input: Decimal | None
    cache_write: Decimal | None
    output: Decimal | None
    discount: Decimal | None
    keep: Decimal  # 1 − discount

    @classmethod
    def from_row(cls, row: PriceOverride) -> _Override:
        if row.effective_from.tzinfo is None or (
            row.effective_to is not None and row.effective_to.tzinfo is None
        ):
            raise ValueError(f"price override {row.pk}: effective dates must be timezone-aware")
        pattern = row.model_pattern.strip()
        exact = "*" not in pattern
        discount = _decimal(row.discount_percent) or None
        label = f"override #{row.pk} " if row.pk is not None else "override "
        return cls(
            pk=row.pk,
            label=f"{label}{row.provider}/{pattern}",
            provider=row.provider.strip().lower(),
            pattern=pattern.lower(),
            exact=exact,
            regex=None if exact else _pattern_regex(pattern),
            start=row.effective_from,
            end=row.effective_to,
            input=_decimal(row.input_per_mtok),
            cached_input=_decimal(row.cached_input_per_mtok),
            cache_write=_decimal(row.cache_write_per_mtok),
            output=_decimal(row.output_per_mtok),
            discount=discount,
            keep=_ONE if discount is None else _ONE - discount / _HUNDRED,
        )

    @property
    def prices(self) -> tuple[Decimal | None, ...]:
        """Explicit USD/MTok prices: input, cached input, cache write, output."""
        return (self.input, self.cached_input, self.cache_write, self.output)

    def matches(self, model: str) -> bool:
        """Whether this override names ``model`` (lower-cased), exactly or by its pattern."""
        if self.exact:
            return self.pattern == model
        return self.regex.fullmatch(model) is not None

    def precedence(self) -> tuple:
        """Sort key: exact before pattern, then latest start, longest pattern, newest row."""
        return (not self.exact, -self.start.timestamp(), -len(self.pattern), -(self.pk or 0))

    def reference(self, listed: _ListPrice | None, factor_note: str) -> str:
        """Human-readable account of the prices this override produced."""
        own = [
            name
            for name, value in (
                ("input", self.input), ("cached input", self.cached_input),
                ("cache write", self.cache_write), ("output", self.output),
            )
            if value is not None
        ]  # fmt: skip
        parts = [self.label]
        if own:
            note = f" ({factor_note})" if factor_note else ""
            parts.append(f"own {'/'.join(own)} prices{note}")
        if listed is not None and len(own) < 4:
            off = f"−{_number(self.discount)}% off " if self.discount else ""
            parts.append(f"{off}{listed.reference}")
        return ", ".join(parts)


class PriceBook:
    """Prices for one organization; build once per batch of events, then quote many.

    An override applies when its provider equals the event's, its ``model_pattern`` equals
    the model or matches it with ``*`` wildcards (case-insensitive), and
    ``effective_from <= at < effective_to``. When several apply, an exact name beats a
    pattern, then the latest ``effective_from`` wins (then the longer pattern).

    Explicit per-type prices (USD/MTok) replace the list price for those types; the types
    not given explicitly take the list price less ``discount_percent``. Override prices are
    standard-tier prices: for batch and service tiers Metron's multiplier applies to them
    (batch ×0.5, OpenAI flex ×0.5, other tiers ×1), while the list-priced types follow the
    list rule (the library's variant when one matches, else the multiplier). A token type
    used by the event that is neither given explicitly nor listed (unknown model: a
    fine-tune, an unlisted model) makes the event unpriced.
    """

    def __init__(self, *, overrides: Iterable[PriceOverride] = ()) -> None:
        self._overrides = sorted(
            (_Override.from_row(row) for row in overrides), key=_Override.precedence
        )
        self._providers = frozenset(o.provider for o in self._overrides)
        self._candidates: dict[tuple[str, str], tuple[_Override, ...]] = {}
        self._override_rates: dict[tuple, _Rates] = {}

    @classmethod
    def for_organization(cls, organization) -> PriceBook:
        """The price book of ``organization`` (instance or pk): one query for its overrides."""
        return cls(overrides=list(PriceOverride.objects.filter(organization=organization)))

    def quote(
        self,
        *,
        provider: str,
        model: str,
        at: datetime,
        usage: TokenCounts,
        batch: bool = False,
        service_tier: str = "",
    ) -> PriceQuote | None:
        """Cost of one event in USD at ``at`` (timezone-aware); ``None`` when unpriced."""
        if at.tzinfo is not UTC:
            if at.tzinfo is None or at.utcoffset() is None:
                raise ValueError(f"at must be timezone-aware, got {at!r}")
            at = at.astimezone(UTC)
        day = at.date()
        tier = service_tier.strip().lower() if service_tier else ""
        if tier == "batch":
            batch = True
        if batch:
            tier = ""

        if self._overrides:
            override = self._match(provider, model, at)
            if override is not None:
                rates = self._rates_with_override(override, provider, model, at, batch, tier)
                cost = rates.cost(usage)
                return None if cost is None else PriceQuote(cost, _OVERRIDE, rates.reference, day)

        rates = _list_rates_for_day(provider, model, day, batch, tier)
        if rates is None:
            return None
        if rates is _TIME_DEPENDENT:
            rates = _rates_from_list(
                _resolve_list_price(provider, model, at, batch, tier, whole_day=False)
            )
        cost = rates.cost(usage)
        return None if cost is None else PriceQuote(cost, _PRICE_BOOK, rates.reference, day)

    def _match(self, provider: str, model: str, at: datetime) -> _Override | None:
        key = (provider, model)
        candidates = self._candidates.get(key)
        if candidates is None:
            provider_l, model_l = provider.strip().lower(), model.strip().lower()
            candidates = ()
            if provider_l in self._providers:
                candidates = tuple(
                    o for o in self._overrides if o.provider == provider_l and o.matches(model_l)
                )
            self._candidates[key] = candidates
        for override in candidates:
            if override.start <= at and (override.end is None or at < override.end):
                return override
        return None

    def _rates_with_override(
        self, override: _Override, provider: str, model: str, at: datetime, batch: bool, tier: str
    ) -> _Rates:
        day = at.date()
        key = (id(override), provider, model, day, batch, tier)
        rates = self._override_rates.get(key)
        if rates is not None:
            return rates
        listed = _list_price_for_day(provider, model, day, batch, tier)
        cacheable = listed is not _TIME_DEPENDENT
        if not cacheable:
            listed = _resolve_list_price(provider, model, at, batch, tier, whole_day=False)
        factor, note = _metron_factor(provider, batch, tier)
        rates = _build_rates(listed, override, factor, override.reference(listed, note))
        if cacheable:
            self._override_rates[key] = rates
        return rates
