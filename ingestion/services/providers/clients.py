"""One page at a time from the OpenAI and Anthropic organization usage and cost APIs.

Both clients use the providers' own SDKs (openai 3.x, anthropic 2.x, both on httpx2) for
transport, auth and retries: 429 and 5xx are retried ``MAX_RETRIES`` times with exponential
backoff, honouring ``Retry-After`` (the SDKs follow it up to two minutes, else give up).
Bodies are read raw and parsed with ``parse_float=Decimal`` so money never passes through
float (the SDKs' models type ``amount.value`` as float).

Wire formats (see ``reference/provider-apis.md`` §1 and §3.2):

- OpenAI ``GET /organization/usage/completions`` and ``/organization/costs`` (OpenAPI spec
  ``openai/openai-openapi``; SDK ``client.admin.organization.usage``): buckets with Unix
  ``start_time``/``end_time``; ``input_tokens`` already includes cached and cache-write
  tokens; cost ``amount: {value: number, currency: "usd"}`` in dollars.
- Anthropic ``GET /v1/organizations/usage_report/messages`` and ``/cost_report``
  (platform.claude.com/docs/en/api/admin/usage_report/retrieve_messages and
  .../admin/cost_report; the claude-cookbooks ``observability/usage_cost_api.ipynb``). No
  SDK method wraps them (anthropic 2.12 has only the Enterprise *analytics* reports), so the
  SDK's generic ``client.get`` is used with the documented Admin API headers ``x-api-key``
  and ``anthropic-version: 2023-06-01``. Usage results carry ``uncached_input_tokens``,
  ``cache_read_input_tokens``, ``cache_creation.ephemeral_5m/1h_input_tokens`` (a flat
  ``cache_creation_5m_input_tokens`` form seen in a third-party schema is accepted too) and
  ``output_tokens``; cost ``amount`` is a decimal STRING in cents ("123.45" = $1.2345).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, Protocol, TypeVar

import anthropic
import httpx2
import openai

OPENAI_API_BASE = "https://api.openai.com/v1"
ANTHROPIC_API_BASE = "https://api.anthropic.com"
ANTHROPIC_ADMIN_API_VERSION = "2023-06-01"
MAX_RETRIES = 4  # attempts = 1 + retries; the SDKs back off exponentially or per Retry-After
TIMEOUT_SECONDS = 60.0
BUCKET_LIMITS = {"1d": 31, "1h": 168}  # the largest page each width allows (both providers)
OPENAI_COSTS_LIMIT = 180
ANTHROPIC_COSTS_LIMIT = 31
OPENAI_USAGE_GROUP_BY = ["project_id", "api_key_id", "model", "batch", "service_tier"]
OPENAI_COSTS_GROUP_BY = ["line_item", "project_id", "api_key_id"]
ANTHROPIC_USAGE_GROUP_BY = ["api_key_id", "model", "service_tier", "workspace_id"]
ANTHROPIC_COSTS_GROUP_BY = ["workspace_id", "description"]

AUTH_FAILED = (
    "{provider} refused the admin key (HTTP {status}): {message}. Check the key of the "
    "connection: an organization admin key is needed, not a project key."
)
HTTP_FAILED = "{provider} answered HTTP {status} to {path}: {message}"
UNREACHABLE = "Could not reach {provider} at {base}: {message}"
BAD_BODY = "{provider} sent a body Metron cannot read ({path}): {message}"

T = TypeVar("T")


class ProviderAPIError(Exception):
    """A provider call failed after the client's retries; ``message`` says why, for ops."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def is_auth_error(self) -> bool:
        return self.status in (401, 403)


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Usage of one bucket and dimension combination, in the ledger's token convention."""

    bucket_start: datetime
    bucket_end: datetime
    project_id: str = ""
    api_key_id: str = ""
    model: str = ""
    batch: bool = False
    service_tier: str = ""
    requests: int | None = None
    input_tokens: int = 0  # includes cached and cache-write tokens
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    web_search_requests: int = 0

    @property
    def natural_key(self) -> tuple:
        return (
            self.bucket_start, self.project_id, self.api_key_id, self.model, self.batch,
            self.service_tier,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class CostRow:
    """One cost result of a day; ``amount`` in major units of ``currency`` (dollars)."""

    day: Any  # datetime.date
    amount: Decimal
    currency: str = "USD"
    line_item: str = ""
    project_id: str = ""
    api_key_id: str = ""
    model: str = ""
    cost_type: str = ""
    token_type: str = ""
    service_tier: str = ""
    context_window: str = ""
    quantity: Decimal | None = None
    quantity_unit: str = ""

    @property
    def natural_key(self) -> tuple:
        return (
            self.day, self.line_item, self.project_id, self.api_key_id, self.model,
            self.cost_type, self.token_type, self.service_tier, self.context_window,
        )  # fmt: skip


@dataclass(slots=True)
class Page(Generic[T]):
    """One page of a report: its rows, the next page's token, how far in time it reached."""

    rows: list[T] = field(default_factory=list)
    has_more: bool = False
    next_page: str | None = None
    covered_until: datetime | None = None  # end of the last bucket on this page


class AdminClient(Protocol):
    provider: str

    def usage_page(
        self, *, start: datetime, end: datetime, width: str, page: str | None
    ) -> Page[UsageRow]: ...

    def costs_page(self, *, start: datetime, end: datetime, page: str | None) -> Page[CostRow]: ...

    def check(self) -> None: ...


# --- parsing (pure) -------------------------------------------------------------------


def decimal_json(text: str | bytes) -> Any:
    """Parse a provider body; numbers with a fraction become exact Decimals."""
    return json.loads(text, parse_float=Decimal)


def to_decimal(value: Any) -> Decimal:
    """An exact Decimal from a JSON number (int or Decimal) or a decimal string."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise ValueError(f"not an amount: {value!r}") from None
    else:
        raise ValueError(f"not an amount: {value!r}")
    if not result.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return result


def cents_to_dollars(value: Any) -> Decimal:
    """Anthropic's cost amount (cents, as a decimal string) in dollars, exactly."""
    return to_decimal(value).scaleb(-2)


def _int(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not a token count: {value!r}")
    return value


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _unix(value: Any) -> datetime:
    return datetime.fromtimestamp(_int(value), UTC)


def _rfc3339(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _page(body: Any, rows: list, ends: list[datetime]) -> Page:
    return Page(
        rows=rows,
        has_more=bool(body.get("has_more")),
        next_page=body.get("next_page") or None,
        covered_until=max(ends) if ends else None,
    )


def parse_openai_usage(body: Any) -> Page[UsageRow]:
    """A parsed ``/organization/usage/completions`` page."""
    rows, ends = [], []
    for bucket in body.get("data") or []:
        start, end = _unix(bucket["start_time"]), _unix(bucket["end_time"])
        ends.append(end)
        for result in bucket.get("results") or []:
            writes = result.get("input_cache_write_tokens")
            if writes is None:
                writes = _int(result.get("input_cache_write_30m_tokens")) + _int(
                    result.get("input_cache_write_12h_tokens")
                )
            rows.append(
                UsageRow(
                    bucket_start=start,
                    bucket_end=end,
                    project_id=_text(result.get("project_id")),
                    api_key_id=_text(result.get("api_key_id")),
                    model=_text(result.get("model")),
                    batch=bool(result.get("batch")),
                    service_tier=_text(result.get("service_tier")),
                    requests=_int(result.get("num_model_requests")),
                    input_tokens=_int(result.get("input_tokens")),
                    cached_input_tokens=_int(result.get("input_cached_tokens")),
                    cache_write_tokens=_int(writes),
                    output_tokens=_int(result.get("output_tokens")),
                )
            )
    return _page(body, rows, ends)


def openai_line_item_parts(line_item: str) -> tuple[str, str]:
    """(model, token type) from an OpenAI line item such as ``"gpt-4o-2024-08-06, input"``.

    The line-item vocabulary is not documented (UNVERIFIED in provider-apis.md §1.3): only
    the "<model>, <kind>" form is read; anything else gives no model, and reconciliation
    then allocates that line over the day's models.
    """
    model, sep, kind = line_item.partition(", ")
    if not sep or not model.strip() or " " in model.strip():
        return "", ""
    return model.strip(), kind.strip()


def parse_openai_costs(body: Any) -> Page[CostRow]:
    """A parsed ``/organization/costs`` page; amounts in dollars, exact."""
    rows, ends = [], []
    for bucket in body.get("data") or []:
        start, end = _unix(bucket["start_time"]), _unix(bucket["end_time"])
        ends.append(end)
        for result in bucket.get("results") or []:
            amount = result.get("amount") or {}
            line_item = _text(result.get("line_item"))
            model, token_type = openai_line_item_parts(line_item)
            quantity = result.get("quantity")
            rows.append(
                CostRow(
                    day=start.date(),
                    amount=to_decimal(amount.get("value", 0)),
                    currency=_text(amount.get("currency") or "usd").upper(),
                    line_item=line_item,
                    project_id=_text(result.get("project_id")),
                    api_key_id=_text(result.get("api_key_id")),
                    model=model,
                    token_type=token_type,
                    quantity=None if quantity is None else to_decimal(quantity),
                    quantity_unit=_text(result.get("quantity_unit")),
                )  # fmt: skip
            )
    return _page(body, rows, ends)


def parse_anthropic_usage(body: Any) -> Page[UsageRow]:
    """A parsed ``/v1/organizations/usage_report/messages`` page, in the ledger convention.

    Anthropic's input counts exclude cache reads and writes; the ledger's ``input_tokens``
    is their sum (uncached + cache read + 5-minute and 1-hour cache writes).
    """
    rows, ends = [], []
    for bucket in body.get("data") or []:
        start, end = _rfc3339(bucket["starting_at"]), _rfc3339(bucket["ending_at"])
        ends.append(end)
        for result in bucket.get("results") or []:
            creation = result.get("cache_creation") or {}
            write_5m = _int(
                creation.get(
                    "ephemeral_5m_input_tokens", result.get("cache_creation_5m_input_tokens")
                )
            )
            write_1h = _int(
                creation.get(
                    "ephemeral_1h_input_tokens", result.get("cache_creation_1h_input_tokens")
                )
            )
            read = _int(result.get("cache_read_input_tokens"))
            uncached = _int(result.get("uncached_input_tokens"))
            tier = _text(result.get("service_tier"))
            rows.append(
                UsageRow(
                    bucket_start=start,
                    bucket_end=end,
                    project_id=_text(result.get("workspace_id")),
                    api_key_id=_text(result.get("api_key_id")),
                    model=_text(result.get("model")),
                    batch=tier == "batch",
                    service_tier=tier,
                    requests=None,
                    input_tokens=uncached + read + write_5m + write_1h,
                    cached_input_tokens=read,
                    cache_write_tokens=write_5m + write_1h,
                    cache_write_1h_tokens=write_1h,
                    output_tokens=_int(result.get("output_tokens")),
                    web_search_requests=_int(
                        (result.get("server_tool_use") or {}).get("web_search_requests")
                    ),
                )
            )
    return _page(body, rows, ends)


def parse_anthropic_costs(body: Any) -> Page[CostRow]:
    """A parsed ``/v1/organizations/cost_report`` page: cents strings → exact dollars."""
    rows, ends = [], []
    for bucket in body.get("data") or []:
        start, end = _rfc3339(bucket["starting_at"]), _rfc3339(bucket["ending_at"])
        ends.append(end)
        for result in bucket.get("results") or []:
            rows.append(
                CostRow(
                    day=start.date(),
                    amount=cents_to_dollars(result.get("amount")),
                    currency=_text(result.get("currency") or "USD").upper(),
                    line_item=_text(result.get("description")),
                    project_id=_text(result.get("workspace_id")),
                    model=_text(result.get("model")),
                    cost_type=_text(result.get("cost_type")),
                    token_type=_text(result.get("token_type")),
                    service_tier=_text(result.get("service_tier")),
                    context_window=_text(result.get("context_window")),
                )
            )
    return _page(body, rows, ends)


# --- clients ----------------------------------------------------------------------------


def _error_message(body: Any) -> str:
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):  # the SDKs unwrap {"error": {...}} already
            return body["message"]
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return str(body)[:300] if body else "no details"


def _status_error(provider: str, path: str, error: Exception) -> ProviderAPIError:
    status = getattr(error, "status_code", None)
    message = _error_message(getattr(error, "body", None))
    template = AUTH_FAILED if status in (401, 403) else HTTP_FAILED
    return ProviderAPIError(
        template.format(provider=provider, status=status, path=path, message=message),
        status=status,
    )


def _parse(provider: str, path: str, text: str, parser) -> Page:
    try:
        return parser(decimal_json(text))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ProviderAPIError(
            BAD_BODY.format(provider=provider, path=path, message=error)
        ) from error


class OpenAIAdminClient:
    """OpenAI's organization Usage and Costs APIs through ``openai`` 3.x (admin key auth)."""

    provider = "openai"
    label = "OpenAI"

    def __init__(self, *, admin_key: str, api_base: str = "", max_retries: int = MAX_RETRIES):
        self.api_base = api_base or OPENAI_API_BASE
        self._client = openai.OpenAI(
            admin_api_key=admin_key, base_url=self.api_base, max_retries=max_retries,
            timeout=TIMEOUT_SECONDS,
        )  # fmt: skip

    def _call(self, path: str, method, parser, **params) -> Page:
        try:
            raw = method(**params)
        except openai.APIStatusError as error:
            raise _status_error(self.label, path, error) from error
        except openai.APIConnectionError as error:
            raise ProviderAPIError(
                UNREACHABLE.format(provider=self.label, base=self.api_base, message=error)
            ) from error
        return _parse(self.label, path, raw.http_response.text, parser)

    def usage_page(self, *, start, end, width, page) -> Page[UsageRow]:
        params: dict[str, Any] = {
            "start_time": int(start.timestamp()),
            "end_time": int(end.timestamp()),
            "bucket_width": width,
            "group_by": OPENAI_USAGE_GROUP_BY,
            "limit": BUCKET_LIMITS[width],
        }
        if page:
            params["page"] = page
        usage = self._client.admin.organization.usage.with_raw_response
        return self._call(
            "/organization/usage/completions", usage.completions, parse_openai_usage, **params
        )

    def costs_page(self, *, start, end, page) -> Page[CostRow]:
        params: dict[str, Any] = {
            "start_time": int(start.timestamp()),
            "end_time": int(end.timestamp()),
            "bucket_width": "1d",
            "group_by": OPENAI_COSTS_GROUP_BY,
            "limit": OPENAI_COSTS_LIMIT,
        }
        if page:
            params["page"] = page
        usage = self._client.admin.organization.usage.with_raw_response
        return self._call("/organization/costs", usage.costs, parse_openai_costs, **params)

    def check(self) -> None:
        """One cheap call (yesterday's usage, one bucket) that needs the admin key."""
        end = datetime.now(UTC)
        usage = self._client.admin.organization.usage.with_raw_response
        self._call(
            "/organization/usage/completions", usage.completions, parse_openai_usage,
            start_time=int((end - timedelta(days=1)).timestamp()), bucket_width="1d", limit=1,
        )  # fmt: skip


class AnthropicAdminClient:
    """Anthropic's Admin usage and cost reports through ``anthropic`` 2.x's generic ``get``."""

    provider = "anthropic"
    label = "Anthropic"
    USAGE_PATH = "/v1/organizations/usage_report/messages"
    COSTS_PATH = "/v1/organizations/cost_report"

    def __init__(self, *, admin_key: str, api_base: str = "", max_retries: int = MAX_RETRIES):
        self.api_base = api_base or ANTHROPIC_API_BASE
        # The Admin API documents x-api-key + anthropic-version 2023-06-01; the 2.x SDK
        # would send the key as a Bearer token with its own version, so both are set here.
        self._client = anthropic.Anthropic(
            api_key=admin_key, base_url=self.api_base, max_retries=max_retries,
            timeout=TIMEOUT_SECONDS,
            default_headers={
                "x-api-key": admin_key, "anthropic-version": ANTHROPIC_ADMIN_API_VERSION,
                "Authorization": anthropic.omit,
            },
        )  # fmt: skip

    def _get(self, path: str, params: dict, parser) -> Page:
        try:
            response = self._client.get(path, cast_to=httpx2.Response, options={"params": params})
        except anthropic.APIStatusError as error:
            raise _status_error(self.label, path, error) from error
        except anthropic.APIConnectionError as error:
            raise ProviderAPIError(
                UNREACHABLE.format(provider=self.label, base=self.api_base, message=error)
            ) from error
        return _parse(self.label, path, response.text, parser)

    @staticmethod
    def _time(value: datetime) -> str:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def usage_page(self, *, start, end, width, page) -> Page[UsageRow]:
        params: dict[str, Any] = {
            "starting_at": self._time(start),
            "ending_at": self._time(end),
            "bucket_width": width,
            "group_by": ANTHROPIC_USAGE_GROUP_BY,
            "limit": BUCKET_LIMITS[width],
        }
        if page:
            params["page"] = page
        return self._get(self.USAGE_PATH, params, parse_anthropic_usage)

    def costs_page(self, *, start, end, page) -> Page[CostRow]:
        params: dict[str, Any] = {
            "starting_at": self._time(start),
            "ending_at": self._time(end),
            "bucket_width": "1d",
            "group_by": ANTHROPIC_COSTS_GROUP_BY,
            "limit": ANTHROPIC_COSTS_LIMIT,
        }
        if page:
            params["page"] = page
        return self._get(self.COSTS_PATH, params, parse_anthropic_costs)

    def check(self) -> None:
        """One cheap call (yesterday's usage, one bucket) that needs the admin key."""
        end = datetime.now(UTC)
        self._get(
            self.USAGE_PATH,
            {"starting_at": self._time(end - timedelta(days=1)), "bucket_width": "1d", "limit": 1},
            parse_anthropic_usage,
        )


CLIENTS: dict[str, type] = {"openai": OpenAIAdminClient, "anthropic": AnthropicAdminClient}


def admin_client(*, provider: str, admin_key: str, api_base: str = "") -> AdminClient:
    """The client of ``provider`` for an admin key (``api_base`` empty: the public API)."""
    try:
        cls = CLIENTS[provider]
    except KeyError:
        raise ValueError(f"no usage API client for provider {provider!r}") from None
    return cls(admin_key=admin_key, api_base=api_base)
