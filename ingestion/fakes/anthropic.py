"""A local Anthropic Admin usage and cost report API, for tests and the demo.

Serves ``GET /v1/organizations/usage_report/messages`` and ``GET /v1/organizations/cost_report``
in Anthropic's wire format (``reference/provider-apis.md`` §3.2; platform.claude.com
docs ``api/admin/usage_report/retrieve_messages`` and ``api/admin/cost_report``): admin-key
auth through ``x-api-key`` (401 otherwise) with a required ``anthropic-version`` header,
RFC 3339 ``starting_at``/``ending_at``, ``group_by[]`` (``group_by`` accepted too), paging
with ``page``/``next_page``/``has_more`` and a small page size, fault injection and slow
pages like the OpenAI fake. Usage results split input into uncached, cache-read and
cache-creation (5-minute / 1-hour) tokens; cost amounts are decimal strings in CENTS.

Costs are billed at list prices through Metron's price book (see ``ingestion.fakes.openai``),
so an honest ledger reconciles to zero; ``price_factors`` simulates price drift.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from ingestion.fakes.base import FakeServer, Request, Response
from ingestion.fakes.openai import (
    WIDTHS,
    BillCache,
    Paging,
    bucket_starts,
    calls_in,
    decimal_json,
    fixture_days,
    ledger_groups,
    price_tokens,
)

DEFAULT_ADMIN_KEY = "sk-ant-admin01-fake-anthropic-0000"
DEFAULT_PAGE_SIZE = 2
USAGE_LIMITS = {"1d": (7, 31), "1h": (24, 168), "1m": (60, 1440)}
COSTS_LIMIT = (7, 31)
USAGE_GROUPS = (
    "api_key_id",
    "workspace_id",
    "model",
    "service_tier",
    "context_window",
    "inference_geo",
    "account_id",
    "service_account_id",
)
COSTS_GROUPS = ("workspace_id", "description", "inference_geo")
CENT_PLACES = Decimal("1e-6")  # cents to 1e-6, i.e. dollars to 1e-8
# (token type in the cost report, price-book usage key, description suffix)
TOKEN_TYPES = (
    ("uncached_input_tokens", "input", "Input Tokens"),
    ("cache_read_input_tokens", "cached", "Cache Read"),
    ("cache_creation.ephemeral_5m_input_tokens", "write", "5m Cache Write"),
    ("cache_creation.ephemeral_1h_input_tokens", "write", "1h Cache Write"),
    ("output_tokens", "output", "Output Tokens"),
)


def _error(status: int, kind: str, message: str) -> Response:
    return Response(status, {"type": "error", "error": {"type": kind, "message": message}})


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class AnthropicCall:
    """One Messages call as Anthropic counts it (input excludes cache reads and writes)."""

    event_id: str
    timestamp: datetime
    api_key_id: str
    workspace_id: str  # "" is the default workspace (reported as null)
    model: str
    service_tier: str  # standard | batch | priority
    uncached_input_tokens: int
    cache_read_input_tokens: int
    cache_creation_5m_tokens: int
    cache_creation_1h_tokens: int
    output_tokens: int

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_creation_5m_tokens + self.cache_creation_1h_tokens

    @property
    def input_tokens(self) -> int:
        """Total input in the ledger convention (OpenAI's)."""
        return self.uncached_input_tokens + self.cache_read_input_tokens + self.cache_write_tokens

    def ledger_event(self) -> dict:
        """The call as a Metron usage event, input normalized to the ledger convention."""
        return {
            "event_id": self.event_id,
            "timestamp": self.timestamp.isoformat(),
            "provider": "anthropic",
            "model": self.model,
            "api_key_id": self.api_key_id,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cache_read_input_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "batch": self.service_tier == "batch",
            "service_tier": self.service_tier,
        }

    def token_counts(self) -> dict[str, int]:
        return {
            "uncached_input_tokens": self.uncached_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation.ephemeral_5m_input_tokens": self.cache_creation_5m_tokens,
            "cache_creation.ephemeral_1h_input_tokens": self.cache_creation_1h_tokens,
            "output_tokens": self.output_tokens,
        }


def anthropic_calls(
    *,
    key_ids: Sequence[str],
    models: Sequence[str],
    days: int,
    seed: int,
    end_day: date | None = None,
    calls_per_day: tuple[int, int] = (2, 6),
) -> list[AnthropicCall]:
    """Deterministic calls for each day × key × model (same arguments → same calls)."""
    rng = random.Random(f"anthropic:{seed}")
    calls = []
    for day in fixture_days(days, end_day):
        for k, key_id in enumerate(key_ids):
            for model in models:
                for _ in range(rng.randint(*calls_per_day)):
                    at = datetime.combine(day, time.min, tzinfo=UTC) + timedelta(
                        seconds=rng.randrange(86400)
                    )
                    read = rng.choice((0, 0, rng.randint(100, 8000)))
                    write_5m = rng.choice((0, 0, 0, rng.randint(100, 3000)))
                    write_1h = rng.choice((0,) * 7 + (rng.randint(100, 2000),))
                    tier = rng.choice(("standard",) * 6 + ("batch", "priority"))
                    calls.append(
                        AnthropicCall(
                            event_id=f"an-{seed}-{len(calls):06d}",
                            timestamp=at,
                            api_key_id=key_id,
                            workspace_id="" if k % 2 else f"wrkspc_{k}",
                            model=model,
                            service_tier=tier,
                            uncached_input_tokens=rng.randint(50, 5000),
                            cache_read_input_tokens=read,
                            cache_creation_5m_tokens=write_5m,
                            cache_creation_1h_tokens=write_1h,
                            output_tokens=rng.randint(10, 1200),
                        )  # fmt: skip
                    )
    return calls


def anthropic_calls_from_ledger(*, organization, since: date, until: date) -> list[AnthropicCall]:
    """One aggregate call per (day, key, model, tier) of the organization's Anthropic ledger
    over ``[since, until)``, at noon UTC, input split back into Anthropic's fields (cache
    writes reported as 5-minute writes): a fake serving them reports and bills exactly
    what the ledger holds (for the demo)."""
    calls = []
    for index, row in enumerate(
        ledger_groups(organization=organization, provider="anthropic", since=since, until=until)
    ):
        tier = "batch" if row["batch"] else (row["service_tier"] or "standard")
        calls.append(
            AnthropicCall(
                event_id=f"ledger-{row['day']}-{index}",
                timestamp=datetime.combine(row["day"], time(12), tzinfo=UTC),
                api_key_id=row["api_key_id"],
                workspace_id="",
                model=row["model"],
                service_tier=tier,
                uncached_input_tokens=row["input"] - row["cached"] - row["written"],
                cache_read_input_tokens=row["cached"],
                cache_creation_5m_tokens=row["written"],
                cache_creation_1h_tokens=0,
                output_tokens=row["output"],
            )  # fmt: skip
        )
    return calls


class AnthropicFake(FakeServer):
    """The fake Anthropic Admin API; ``calls`` is the traffic it reports and bills."""

    def __init__(
        self,
        *,
        calls: Iterable[AnthropicCall],
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
        self.route("GET", "/v1/organizations/usage_report/messages", self._guard(self._usage))
        self.route("GET", "/v1/organizations/cost_report", self._guard(self._costs))

    # --- test helpers -----------------------------------------------------------------

    def slow_page(self, *, endpoint: str = "usage", index: int, seconds: float) -> None:
        """Make the ``index``-th page (0-based) of ``endpoint`` (usage|costs) answer late, once."""
        self.paging.slow_page(endpoint, index, seconds)

    def usage_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/usage_report/messages")]

    def ledger_events(self) -> list[dict]:
        return [call.ledger_event() for call in self.calls]

    def expected_buckets(self, width: str = "1d") -> dict[tuple, dict[str, int]]:
        """Tokens per (bucket start, workspace, key, model, batch, tier), ledger convention."""
        totals: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for call in self.calls:
            (start,) = bucket_starts(
                call.timestamp, call.timestamp + timedelta(microseconds=1), width
            )
            key = (start, call.workspace_id, call.api_key_id, call.model,
                   call.service_tier == "batch", call.service_tier)  # fmt: skip
            row = totals[key]
            row["input_tokens"] += call.input_tokens
            row["cached_input_tokens"] += call.cache_read_input_tokens
            row["cache_write_tokens"] += call.cache_write_tokens
            row["output_tokens"] += call.output_tokens
        return {key: dict(value) for key, value in totals.items()}

    def expected_cost_cents(self) -> dict[tuple, Decimal]:
        """Cents per (day, workspace, model, token type, tier), as billed."""
        return dict(self._bill())

    # --- handlers ----------------------------------------------------------------------

    def _guard(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def guarded(request: Request) -> Response:
            if request.headers.get("x-api-key") != self.admin_key:
                return _error(401, "authentication_error", "invalid x-api-key")
            if not request.headers.get("anthropic-version"):
                return _error(400, "invalid_request_error", "anthropic-version header is required")
            return handler(request)

        return guarded

    def _range(self, request: Request, width: str, limits) -> tuple | Response:
        try:
            start = datetime.fromisoformat(request.param("starting_at").replace("Z", "+00:00"))
        except (AttributeError, ValueError):
            return _error(400, "invalid_request_error", "starting_at is required (RFC 3339).")
        ending = request.param("ending_at")
        end = (
            datetime.fromisoformat(ending.replace("Z", "+00:00"))
            if ending
            else datetime.now(UTC) + timedelta(days=1)
        )
        default, maximum = limits
        limit = int(request.param("limit") or default)
        if not 1 <= limit <= maximum:
            return _error(400, "invalid_request_error", f"limit must be between 1 and {maximum}.")
        return start, end, limit

    def _usage(self, request: Request) -> Response:
        width = request.param("bucket_width") or "1d"
        if width not in WIDTHS:
            return _error(400, "invalid_request_error", "bucket_width must be 1m, 1h or 1d.")
        parsed = self._range(request, width, USAGE_LIMITS[width])
        if isinstance(parsed, Response):
            return parsed
        start, end, limit = parsed
        groups = request.params("group_by")
        if set(groups) - set(USAGE_GROUPS):
            return _error(400, "invalid_request_error", "unknown group_by[] dimension.")
        window = self.paging.window(
            bucket_starts(start, end, width), request.param("page"), limit, "usage"
        )
        if window is None:
            return _error(400, "invalid_request_error", "invalid page token")
        chosen, next_page = window
        step = timedelta(seconds=WIDTHS[width])
        stamps = [call.timestamp for call in self.calls]
        data = []
        for bucket in chosen:
            grouped: dict[tuple, dict] = {}
            for call in calls_in(self.calls, stamps, bucket, bucket + step):
                dims = {
                    "api_key_id": call.api_key_id or None,
                    "workspace_id": call.workspace_id or None,
                    "model": call.model,
                    "service_tier": call.service_tier,
                    "context_window": "0-200k",
                    "inference_geo": "global",
                    "account_id": None,
                    "service_account_id": None,
                }
                shown = {name: (dims[name] if name in groups else None) for name in USAGE_GROUPS}
                row = grouped.setdefault(
                    tuple(shown.values()),
                    {
                        "uncached_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                        "cache_creation": {
                            "ephemeral_5m_input_tokens": 0,
                            "ephemeral_1h_input_tokens": 0,
                        },
                        "output_tokens": 0,
                        "server_tool_use": {"web_search_requests": 0},
                        **shown,
                    },
                )
                row["uncached_input_tokens"] += call.uncached_input_tokens
                row["cache_read_input_tokens"] += call.cache_read_input_tokens
                row["cache_creation"]["ephemeral_5m_input_tokens"] += call.cache_creation_5m_tokens
                row["cache_creation"]["ephemeral_1h_input_tokens"] += call.cache_creation_1h_tokens
                row["output_tokens"] += call.output_tokens
            data.append(
                {
                    "starting_at": _rfc3339(bucket),
                    "ending_at": _rfc3339(bucket + step),
                    "results": list(grouped.values()),
                }
            )
        body = {"data": data, "has_more": next_page is not None, "next_page": next_page}
        return Response(200, raw=decimal_json(body))

    def _bill(self) -> dict[tuple, Decimal]:
        """(day, workspace, model, token type, tier) → cents, each call priced at list."""
        return self._bills.get(self.calls, self.price_factors, self._compute_bill)

    def _compute_bill(self) -> dict[tuple, Decimal]:
        lines: dict[tuple, Decimal] = defaultdict(Decimal)
        for call in self.calls:
            factor = Decimal(self.price_factors.get(call.model, 1))
            counts = call.token_counts()
            for token_type, kind, _ in TOKEN_TYPES:
                tokens = counts[token_type]
                if not tokens:
                    continue
                dollars = price_tokens(
                    "anthropic", call.model, call.timestamp, kind, tokens,
                    batch=call.service_tier == "batch", tier=call.service_tier,
                )  # fmt: skip
                key = (call.timestamp.date(), call.workspace_id, call.model, token_type,
                       call.service_tier)  # fmt: skip
                lines[key] += dollars * factor * 100
        return {key: value.quantize(CENT_PLACES) for key, value in lines.items()}

    def _costs(self, request: Request) -> Response:
        width = request.param("bucket_width") or "1d"
        if width != "1d":
            return _error(400, "invalid_request_error", "bucket_width must be 1d.")
        parsed = self._range(request, width, COSTS_LIMIT)
        if isinstance(parsed, Response):
            return parsed
        start, end, limit = parsed
        groups = request.params("group_by")
        if set(groups) - set(COSTS_GROUPS):
            return _error(400, "invalid_request_error", "unknown group_by[] dimension.")
        window = self.paging.window(
            bucket_starts(start, end, "1d"), request.param("page"), limit, "costs"
        )
        if window is None:
            return _error(400, "invalid_request_error", "invalid page token")
        chosen, next_page = window
        bill = self._bill()
        suffix = {token_type: label for token_type, _, label in TOKEN_TYPES}
        data = []
        for bucket in chosen:
            grouped: dict[tuple, Decimal] = defaultdict(Decimal)
            for (day, workspace, model, token_type, tier), cents in bill.items():
                if day != bucket.date():
                    continue
                described = "description" in groups
                shown = (
                    (workspace or None) if "workspace_id" in groups else None,
                    f"{model} Usage - {suffix[token_type]}" if described else None,
                    model if described else None,
                    token_type if described else None,
                    tier if described else None,
                    "tokens" if described else None,
                    "0-200k" if described else None,
                )
                grouped[shown] += cents
            results = [
                {
                    "currency": "USD",
                    "amount": format(cents, "f"),
                    "workspace_id": workspace,
                    "description": description,
                    "model": model,
                    "token_type": token_type,
                    "service_tier": tier,
                    "cost_type": cost_type,
                    "context_window": context_window,
                    "inference_geo": None,
                }
                for (
                    workspace,
                    description,
                    model,
                    token_type,
                    tier,
                    cost_type,
                    context_window,
                ), cents in sorted(grouped.items(), key=lambda kv: tuple(str(v) for v in kv[0]))
            ]
            data.append(
                {
                    "starting_at": _rfc3339(bucket),
                    "ending_at": _rfc3339(bucket + timedelta(days=1)),
                    "results": results,
                }
            )
        body = {"data": data, "has_more": next_page is not None, "next_page": next_page}
        return Response(200, raw=decimal_json(body))


def start_anthropic_fake(
    *,
    key_ids: Sequence[str],
    models: Sequence[str],
    days: int,
    seed: int,
    end_day: date | None = None,
    admin_key: str = DEFAULT_ADMIN_KEY,
    page_size: int = DEFAULT_PAGE_SIZE,
    calls: Iterable[AnthropicCall] | None = None,
    price_factors: dict[str, Decimal] | None = None,
) -> AnthropicFake:
    """Start a fake Anthropic Admin API on 127.0.0.1 serving a fixture for these keys and models.

    The base URL to configure is ``fake.url`` (paths start with ``/v1``); stop it with
    ``fake.stop()``. ``calls`` replaces the generated fixture.
    """
    if calls is None:
        calls = anthropic_calls(
            key_ids=key_ids, models=models, days=days, seed=seed, end_day=end_day
        )
    fake = AnthropicFake(
        calls=calls, admin_key=admin_key, page_size=page_size, price_factors=price_factors
    )
    return fake.start()
