"""A local OpenAI organization Usage and Costs API, for tests and the demo.

Serves ``GET /v1/organization/usage/completions`` and ``GET /v1/organization/costs`` in
OpenAI's wire format (see ``reference/provider-apis.md`` §1) from a deterministic fixture of
model calls: ``Bearer`` admin-key auth (401 otherwise), ``group_by`` and ``group_by[]``,
bucket widths ``1d``/``1h``, paging with ``page``/``next_page``/``has_more`` and a small page
size (so clients must page), fault injection (``fail_next``: 429 with Retry-After, 5xx) and
slow pages (``slow_page``) for crash tests.

The fixture's calls are also offered as Metron ledger events (``ledger_events``), so a test
or the demo can ingest the same traffic and reconcile it. Costs are billed at list prices
(Metron's price book without overrides, per call and token type, like a provider bills each
request), so an honest ledger reconciles to zero; ``price_factors`` bills a model above or
below list to simulate price drift.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time as _time
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache

from ingestion.fakes.base import FakeServer, Request, Response

DEFAULT_ADMIN_KEY = "sk-admin-fake-openai-0000"
DEFAULT_PAGE_SIZE = 2  # buckets per page, whatever ``limit`` asks: paging is always exercised
WIDTHS = {"1d": 86400, "1h": 3600, "1m": 60}
USAGE_LIMITS = {"1d": (7, 31), "1h": (24, 168), "1m": (60, 1440)}  # (default, max)
COSTS_LIMIT = (7, 180)
USAGE_GROUPS = ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier")
COSTS_GROUPS = ("project_id", "line_item", "api_key_id")
AMOUNT_PLACES = Decimal("1e-10")  # the fake bills to 1e-10 dollars and prints 16 places
_DECIMAL_MARK = re.compile(r'"__decimal__([-0-9.]+)__"')


# --- shared by the provider fakes --------------------------------------------------------


def default_end_day() -> date:
    """Yesterday (UTC): every fixture call lies in the past, inside the ingest window."""
    return datetime.now(UTC).date() - timedelta(days=1)


def fixture_days(days: int, end_day: date | None) -> list[date]:
    end = end_day or default_end_day()
    return [end - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def decimal_json(body) -> bytes:
    """JSON with Decimals written as bare numbers, exactly as given (no float on the way)."""

    def mark(value):
        if isinstance(value, Decimal):
            return f"__decimal__{value}__"
        raise TypeError(f"not JSON serializable: {type(value).__name__}")

    return _DECIMAL_MARK.sub(r"\1", json.dumps(body, default=mark)).encode()


class Paging:
    """Bucket paging shared by both fakes: tokens are ``page_<unix start>`` of the next bucket."""

    def __init__(self, page_size: int) -> None:
        self.page_size = page_size
        self.slow: dict[tuple[str, int], list[float]] = {}
        self._lock = threading.Lock()

    def slow_page(self, endpoint: str, index: int, seconds: float, times: int = 1) -> None:
        with self._lock:
            self.slow.setdefault((endpoint, index), []).extend([seconds] * times)

    def window(
        self, starts: list[datetime], page: str | None, limit: int, endpoint: str
    ) -> tuple[list[datetime], str | None] | None:
        """The bucket starts of this page and the next page token; None for a bad token."""
        offset = 0
        if page:
            match = re.fullmatch(r"page_(\d+)", page)
            if not match:
                return None
            at = datetime.fromtimestamp(int(match.group(1)), UTC)
            if at not in starts:
                return None
            offset = starts.index(at)
        size = min(limit, self.page_size)
        index = offset // size if size else 0
        with self._lock:
            delays = self.slow.get((endpoint, index))
            delay = delays.pop(0) if delays else 0
        if delay:
            _time.sleep(delay)
        chosen = starts[offset : offset + size]
        rest = starts[offset + size :]
        return chosen, (f"page_{int(rest[0].timestamp())}" if rest else None)


def bucket_starts(start: datetime, end: datetime, width: str) -> list[datetime]:
    step = timedelta(seconds=WIDTHS[width])
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    first = epoch + step * ((start - epoch) // step)  # snapped to the width, in UTC
    starts = []
    while first < end:
        starts.append(first)
        first += step
    return starts


def calls_in(calls: Sequence, stamps: list[datetime], start: datetime, end: datetime) -> Sequence:
    """The calls (sorted by timestamp, ``stamps`` their timestamps) in ``[start, end)``."""
    return calls[bisect_left(stamps, start) : bisect_left(stamps, end)]


class BillCache:
    """Bills are recomputed only when the fixture's calls or price factors change."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._bill: dict | None = None

    def get(self, calls: Sequence, factors: dict, compute: Callable[[], dict]) -> dict:
        key = (hash(tuple(calls)), tuple(sorted(factors.items())))
        if self._key != key:
            self._bill, self._key = compute(), key
        return self._bill


def ledger_groups(*, organization, provider: str, since: date, until: date):
    """The organization's ledger of ``provider`` over ``[since, until)``, one row per event.

    Not summed per day: a provider prices each call, and a day's tokens summed into one
    call would cross long-context price tiers (Anthropic bills input above 200k tokens
    at a higher rate) that no real call reached.
    """
    from django.db.models import F, Value
    from django.db.models.functions import TruncDate

    from ingestion.models import UsageEvent

    return (
        UsageEvent.objects.filter(
            organization=organization,
            provider=provider,
            timestamp__gte=datetime.combine(since, time.min, tzinfo=UTC),
            timestamp__lt=datetime.combine(until, time.min, tzinfo=UTC),
        )  # fmt: skip
        .annotate(day=TruncDate("timestamp", tzinfo=UTC))
        .values("day", "api_key_id", "model", "batch", "service_tier")
        .annotate(
            requests=Value(1),
            input=F("input_tokens"),
            cached=F("cached_input_tokens"),
            written=F("cache_write_tokens"),
            output=F("output_tokens"),
        )
        .order_by("day", "api_key_id", "model", "batch", "service_tier", "id")
    )


def bad_request(message: str) -> Response:
    return Response(400, {"error": {"message": message, "type": "invalid_request_error"}})


# --- the fixture ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenAICall:
    """One model call as OpenAI counts it (``input_tokens`` includes cached and written)."""

    event_id: str
    timestamp: datetime
    api_key_id: str
    project_id: str
    model: str
    batch: bool
    service_tier: str
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    requests: int = 1  # >1: an aggregate of calls (see ``openai_calls_from_ledger``)

    def ledger_event(self) -> dict:
        """The call as a Metron usage event (for ``usage_events_ingest``)."""
        return {
            "event_id": self.event_id,
            "timestamp": self.timestamp.isoformat(),
            "provider": "openai",
            "model": self.model,
            "api_key_id": self.api_key_id,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "batch": self.batch,
            "service_tier": self.service_tier,
        }

    def token_lines(self) -> list[tuple[str, str, int]]:
        """(token type for the line item, price-book usage key, tokens) this call is billed for."""
        uncached = self.input_tokens - self.cached_input_tokens - self.cache_write_tokens
        prefix = "batch " if self.batch else ""
        return [
            (f"{prefix}input", "input", uncached),
            (f"{prefix}cached input", "cached", self.cached_input_tokens),
            (f"{prefix}cache write", "write", self.cache_write_tokens),
            (f"{prefix}output", "output", self.output_tokens),
        ]


@lru_cache(maxsize=1)
def _price_book():
    from ingestion.pricing import PriceBook  # needs Django set up: imported when billing

    return PriceBook()


def price_tokens(
    provider: str, model: str, at: datetime, kind: str, tokens: int, *, batch: bool, tier: str
) -> Decimal:
    """List price (Metron's price book, no overrides) of ``tokens`` of one token type, USD."""
    from ingestion.pricing import TokenUsage

    if not tokens:
        return Decimal(0)
    usage = {
        "input": TokenUsage(tokens, 0),
        "cached": TokenUsage(tokens, 0, cached_input_tokens=tokens),
        "write": TokenUsage(tokens, 0, cache_write_tokens=tokens),
        "output": TokenUsage(0, tokens),
    }[kind]
    quote = _price_book().quote(
        provider=provider, model=model, at=at, usage=usage, batch=batch, service_tier=tier
    )
    if quote is None:
        raise LookupError(f"the fake cannot bill {provider}/{model}: no list price")
    return quote.cost


def openai_calls(
    *,
    key_ids: Sequence[str],
    models: Sequence[str],
    days: int,
    seed: int,
    end_day: date | None = None,
    calls_per_day: tuple[int, int] = (2, 6),
) -> list[OpenAICall]:
    """Deterministic calls for each day × key × model (same arguments → same calls)."""
    rng = random.Random(f"openai:{seed}")
    calls = []
    for day in fixture_days(days, end_day):
        for k, key_id in enumerate(key_ids):
            for model in models:
                for _ in range(rng.randint(*calls_per_day)):
                    at = datetime.combine(day, time.min, tzinfo=UTC) + timedelta(
                        seconds=rng.randrange(86400)
                    )
                    input_tokens = rng.randint(200, 6000)
                    cached = rng.choice((0, 0, rng.randint(0, input_tokens // 2)))
                    written = rng.choice((0, 0, 0, rng.randint(0, (input_tokens - cached) // 4)))
                    batch = rng.random() < 0.15
                    tier = "" if batch else rng.choice(("default", "default", "default", "flex"))
                    calls.append(
                        OpenAICall(
                            event_id=f"oa-{seed}-{len(calls):06d}",
                            timestamp=at,
                            api_key_id=key_id,
                            project_id=f"proj_{k % 2}",
                            model=model,
                            batch=batch,
                            service_tier=tier,
                            input_tokens=input_tokens,
                            cached_input_tokens=cached,
                            cache_write_tokens=written,
                            output_tokens=rng.randint(10, 900),
                        )  # fmt: skip
                    )
    return calls


def openai_calls_from_ledger(*, organization, since: date, until: date) -> list[OpenAICall]:
    """One aggregate call per (day, key, model, batch, tier) of the organization's OpenAI
    ledger over ``[since, until)``, at noon UTC: a fake serving them reports and bills exactly
    what the ledger holds (for the demo; add calls to plant differences)."""
    return [
        OpenAICall(
            event_id=f"ledger-{row['day']}-{index}",
            timestamp=datetime.combine(row["day"], time(12), tzinfo=UTC),
            api_key_id=row["api_key_id"],
            project_id="",
            model=row["model"],
            batch=row["batch"],
            service_tier=row["service_tier"],
            input_tokens=row["input"],
            cached_input_tokens=row["cached"],
            cache_write_tokens=row["written"],
            output_tokens=row["output"],
            requests=row["requests"],
        )  # fmt: skip
        for index, row in enumerate(
            ledger_groups(organization=organization, provider="openai", since=since, until=until)
        )
    ]


# --- the server -----------------------------------------------------------------------------


class OpenAIFake(FakeServer):
    """The fake OpenAI admin API; ``calls`` is the traffic it reports and bills."""

    def __init__(
        self,
        *,
        calls: Iterable[OpenAICall],
        admin_key: str = DEFAULT_ADMIN_KEY,
        page_size: int = DEFAULT_PAGE_SIZE,
        price_factors: dict[str, Decimal] | None = None,
    ) -> None:
        super().__init__()
        self.calls = sorted(calls, key=lambda c: (c.timestamp, c.event_id))
        self.admin_key = admin_key
        self.paging = Paging(page_size)
        self.price_factors = price_factors or {}
        self._bills = BillCache()
        self.route("GET", "/v1/organization/usage/completions", self._guard(self._usage))
        self.route("GET", "/v1/organization/costs", self._guard(self._costs))

    # --- test helpers -----------------------------------------------------------------

    def slow_page(self, *, endpoint: str = "usage", index: int, seconds: float) -> None:
        """Make the ``index``-th page (0-based) of ``endpoint`` (usage|costs) answer late, once."""
        self.paging.slow_page(endpoint, index, seconds)

    def usage_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/usage/completions")]

    def ledger_events(self) -> list[dict]:
        return [call.ledger_event() for call in self.calls]

    def expected_buckets(self, width: str = "1d") -> dict[tuple, dict[str, int]]:
        """Tokens per (bucket start, project, key, model, batch, tier), as a sync stores them."""
        totals: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for call in self.calls:
            (start,) = bucket_starts(
                call.timestamp, call.timestamp + timedelta(microseconds=1), width
            )
            key = (
                start,
                call.project_id,
                call.api_key_id,
                call.model,
                call.batch,
                call.service_tier,
            )
            row = totals[key]
            row["requests"] += call.requests
            row["input_tokens"] += call.input_tokens
            row["cached_input_tokens"] += call.cached_input_tokens
            row["cache_write_tokens"] += call.cache_write_tokens
            row["output_tokens"] += call.output_tokens
        return {key: dict(value) for key, value in totals.items()}

    def expected_cost_lines(self) -> dict[tuple, Decimal]:
        """Amount (USD) per (day, line item, project, key), as billed."""
        return {
            (day, item, project, key): amount
            for (day, item, project, key), amount in self._bill().items()
        }

    # --- handlers ----------------------------------------------------------------------

    def _guard(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def guarded(request: Request) -> Response:
            if request.headers.get("Authorization") != f"Bearer {self.admin_key}":
                return Response(
                    401,
                    {
                        "error": {
                            "message": "Incorrect API key provided. An admin key is required.",
                            "type": "invalid_request_error",
                            "code": "invalid_api_key",
                        }
                    },
                )
            return handler(request)

        return guarded

    def _range(self, request: Request, width: str, limits) -> tuple | Response:
        try:
            start = datetime.fromtimestamp(int(request.param("start_time")), UTC)
        except (TypeError, ValueError):
            return bad_request("start_time is required (Unix seconds).")
        end_param = request.param("end_time")
        end = (
            datetime.fromtimestamp(int(end_param), UTC)
            if end_param
            else datetime.now(UTC) + timedelta(days=1)
        )
        default, maximum = limits
        limit = int(request.param("limit") or default)
        if not 1 <= limit <= maximum:
            return bad_request(f"limit must be between 1 and {maximum} for bucket_width {width}.")
        return start, end, limit

    def _usage(self, request: Request) -> Response:
        width = request.param("bucket_width") or "1d"
        if width not in WIDTHS:
            return bad_request("bucket_width must be 1m, 1h or 1d.")
        parsed = self._range(request, width, USAGE_LIMITS[width])
        if isinstance(parsed, Response):
            return parsed
        start, end, limit = parsed
        groups = request.params("group_by")
        if set(groups) - set(USAGE_GROUPS):
            return bad_request(f"group_by must be a subset of {', '.join(USAGE_GROUPS)}.")
        window = self.paging.window(
            bucket_starts(start, end, width), request.param("page"), limit, "usage"
        )
        if window is None:
            return bad_request("Invalid page token.")
        chosen, next_page = window
        step = timedelta(seconds=WIDTHS[width])
        stamps = [call.timestamp for call in self.calls]
        data = []
        for bucket in chosen:
            grouped: dict[tuple, dict] = {}
            for call in calls_in(self.calls, stamps, bucket, bucket + step):
                dims = {
                    "project_id": call.project_id,
                    "user_id": None,
                    "api_key_id": call.api_key_id,
                    "model": call.model,
                    "batch": call.batch,
                    "service_tier": call.service_tier or None,
                }
                shown = {name: (dims[name] if name in groups else None) for name in USAGE_GROUPS}
                row = grouped.setdefault(
                    tuple(shown.values()),
                    {
                        "object": "organization.usage.completions.result",
                        "input_tokens": 0,
                        "output_tokens": 0,
                        "num_model_requests": 0,
                        "input_cached_tokens": 0,
                        "input_cache_write_tokens": 0,
                        "input_uncached_tokens": 0,
                        **shown,
                    },
                )
                row["input_tokens"] += call.input_tokens
                row["output_tokens"] += call.output_tokens
                row["num_model_requests"] += call.requests
                row["input_cached_tokens"] += call.cached_input_tokens
                row["input_cache_write_tokens"] += call.cache_write_tokens
                row["input_uncached_tokens"] += (
                    call.input_tokens - call.cached_input_tokens - call.cache_write_tokens
                )
            data.append(
                {
                    "object": "bucket",
                    "start_time": int(bucket.timestamp()),
                    "end_time": int((bucket + step).timestamp()),
                    "results": list(grouped.values()),
                }
            )
        body = {"object": "page", "data": data, "has_more": next_page is not None,
                "next_page": next_page}  # fmt: skip
        return Response(200, raw=decimal_json(body))

    def _bill(self) -> dict[tuple, Decimal]:
        """(day, line item, project, key) → USD, each call priced per token type at list."""
        return self._bills.get(self.calls, self.price_factors, self._compute_bill)

    def _compute_bill(self) -> dict[tuple, Decimal]:
        lines: dict[tuple, Decimal] = defaultdict(Decimal)
        for call in self.calls:
            factor = Decimal(self.price_factors.get(call.model, 1))
            for label, kind, tokens in call.token_lines():
                if not tokens:
                    continue
                cost = price_tokens(
                    "openai",
                    call.model,
                    call.timestamp,
                    kind,
                    tokens,
                    batch=call.batch,
                    tier=call.service_tier,
                )
                key = (call.timestamp.date(), f"{call.model}, {label}", call.project_id,
                       call.api_key_id)  # fmt: skip
                lines[key] += cost * factor
        return {key: value.quantize(AMOUNT_PLACES) for key, value in lines.items()}

    def _costs(self, request: Request) -> Response:
        width = request.param("bucket_width") or "1d"
        if width != "1d":
            return bad_request("bucket_width must be 1d for costs.")
        parsed = self._range(request, width, COSTS_LIMIT)
        if isinstance(parsed, Response):
            return parsed
        start, end, limit = parsed
        groups = request.params("group_by")
        if set(groups) - set(COSTS_GROUPS):
            return bad_request(f"group_by must be a subset of {', '.join(COSTS_GROUPS)}.")
        window = self.paging.window(
            bucket_starts(start, end, "1d"), request.param("page"), limit, "costs"
        )
        if window is None:
            return bad_request("Invalid page token.")
        chosen, next_page = window
        bill = self._bill()
        data = []
        for bucket in chosen:
            grouped: dict[tuple, Decimal] = defaultdict(Decimal)
            for (day, item, project, key), amount in bill.items():
                if day != bucket.date():
                    continue
                shown = (
                    project if "project_id" in groups else None,
                    item if "line_item" in groups else None,
                    key if "api_key_id" in groups else None,
                )
                grouped[shown] += amount
            results = [
                {
                    "object": "organization.costs.result",
                    "amount": {"value": Decimal(f"{amount:.16f}"), "currency": "usd"},
                    "project_id": project,
                    "line_item": item,
                    "api_key_id": key,
                }
                for (project, item, key), amount in sorted(
                    grouped.items(), key=lambda kv: tuple(str(v) for v in kv[0])
                )
            ]
            data.append(
                {
                    "object": "bucket",
                    "start_time": int(bucket.timestamp()),
                    "end_time": int((bucket + timedelta(days=1)).timestamp()),
                    "results": results,
                }
            )
        body = {"object": "page", "data": data, "has_more": next_page is not None,
                "next_page": next_page}  # fmt: skip
        return Response(200, raw=decimal_json(body))


def start_openai_fake(
    *,
    key_ids: Sequence[str],
    models: Sequence[str],
    days: int,
    seed: int,
    end_day: date | None = None,
    admin_key: str = DEFAULT_ADMIN_KEY,
    page_size: int = DEFAULT_PAGE_SIZE,
    calls: Iterable[OpenAICall] | None = None,
    price_factors: dict[str, Decimal] | None = None,
) -> OpenAIFake:
    """Start a fake OpenAI admin API on 127.0.0.1 serving a fixture for these keys and models.

    The base URL to configure is ``fake.url + "/v1"``; stop it with ``fake.stop()``.
    ``calls`` replaces the generated fixture (e.g. traffic derived from a demo ledger).
    """
    if calls is None:
        calls = openai_calls(key_ids=key_ids, models=models, days=days, seed=seed, end_day=end_day)
    fake = OpenAIFake(
        calls=calls, admin_key=admin_key, page_size=page_size, price_factors=price_factors
    )
    return fake.start()
