"""Provider usage objects → the ledger's :class:`~ingestion.pricing.TokenUsage`.

The ledger follows OpenAI's convention: input includes cached and cache-write tokens,
output includes reasoning tokens. Anthropic's Messages ``input_tokens`` excludes cache reads
and writes, so its total input is ``input_tokens + cache_creation_input_tokens +
cache_read_input_tokens``; its ``output_tokens`` is already the billed total.

Shapes read (decoded JSON, or an SDK object's ``model_dump()``):

- OpenAI Chat Completions: ``prompt_tokens``, ``completion_tokens``,
  ``prompt_tokens_details.{cached_tokens, cache_write_tokens}``,
  ``completion_tokens_details.reasoning_tokens`` (also Anthropic's OpenAI-compatible endpoint);
- OpenAI Responses (and Batch ``usage``): ``input_tokens``, ``output_tokens``,
  ``input_tokens_details.{cached_tokens, cache_write_tokens}``,
  ``output_tokens_details.reasoning_tokens``;
- Anthropic Messages: ``input_tokens``, ``output_tokens``, ``cache_creation_input_tokens``
  (or the ``cache_creation.ephemeral_*`` split), ``cache_read_input_tokens``,
  ``output_tokens_details.thinking_tokens`` (informational: part of ``output_tokens``).

Missing optional fields and nulls count as 0; anything else unreadable raises
:class:`UsageShapeError` naming the provider and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from ingestion.pricing import TokenUsage

OPENAI_PROVIDERS: Final = frozenset({"openai", "azure"})
ANTHROPIC_PROVIDERS: Final = frozenset({"anthropic"})


class UsageShapeError(ValueError):
    """A provider usage object that cannot be read as token counts."""


def _count(
    provider: str, data: Mapping, field: str, *, path: str = "", required: bool = False
) -> int:
    """Token count at ``data[field]``: a non-negative integer; missing or null → 0."""
    name = f"{path}.{field}" if path else field
    if field not in data:
        if required:
            raise UsageShapeError(f"{provider} usage: missing required field {name!r}")
        return 0
    value: Any = data[field]
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise UsageShapeError(f"{provider} usage: {name!r} must be a number, got {value!r}")
    try:
        whole = int(value)
    except (ValueError, OverflowError):  # NaN, infinity
        whole = None
    if whole is None or whole != value or whole < 0:
        raise UsageShapeError(
            f"{provider} usage: {name!r} must be a non-negative whole number, got {value!r}"
        )
    return whole


def _details(provider: str, data: Mapping, field: str) -> Mapping:
    """The nested object ``data[field]``; missing or null → empty."""
    value = data.get(field)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageShapeError(f"{provider} usage: {field!r} must be an object, got {value!r}")
    return value


def _openai(provider: str, usage: Mapping, *, input_: str, output: str) -> TokenUsage:
    input_details = f"{input_}_details"
    output_details = f"{output}_details"
    details_in = _details(provider, usage, input_details)
    details_out = _details(provider, usage, output_details)
    return _token_usage(
        provider,
        input_tokens=_count(provider, usage, input_, required=True),
        output_tokens=_count(provider, usage, output, required=True),
        cached_input_tokens=_count(provider, details_in, "cached_tokens", path=input_details),
        cache_write_tokens=_count(provider, details_in, "cache_write_tokens", path=input_details),
        reasoning_tokens=_count(provider, details_out, "reasoning_tokens", path=output_details),
    )


def _anthropic(provider: str, usage: Mapping) -> TokenUsage:
    uncached = _count(provider, usage, "input_tokens", required=True)
    read = _count(provider, usage, "cache_read_input_tokens")
    if usage.get("cache_creation_input_tokens") is not None:
        written = _count(provider, usage, "cache_creation_input_tokens")
    else:
        by_ttl = _details(provider, usage, "cache_creation")
        written = sum(
            _count(provider, by_ttl, field, path="cache_creation")
            for field in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")
        )
    thinking = _details(provider, usage, "output_tokens_details")
    return _token_usage(
        provider,
        input_tokens=uncached + read + written,
        output_tokens=_count(provider, usage, "output_tokens", required=True),
        cached_input_tokens=read,
        cache_write_tokens=written,
        reasoning_tokens=_count(
            provider, thinking, "thinking_tokens", path="output_tokens_details"
        ),
    )


def _token_usage(provider: str, **counts: int) -> TokenUsage:
    try:
        return TokenUsage(**counts)
    except ValueError as exc:
        raise UsageShapeError(f"{provider} usage: {exc}") from exc


def usage_from_provider(provider: str, usage: Mapping) -> TokenUsage:
    """Token counts (ledger convention) from a provider's raw ``usage`` object.

    ``provider`` is ``openai`` / ``azure`` (Chat Completions or Responses shape) or
    ``anthropic`` (Messages shape, or the Chat Completions shape of its OpenAI-compatible
    endpoint). Raises :class:`UsageShapeError` (a ``ValueError``) when it cannot be read.
    """
    name = (provider or "").strip().lower()
    if not isinstance(usage, Mapping):
        raise UsageShapeError(f"{provider} usage: expected an object, got {type(usage).__name__}")
    if name not in OPENAI_PROVIDERS and name not in ANTHROPIC_PROVIDERS:
        raise UsageShapeError(f"{provider!r}: no usage shape known for this provider")
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        return _openai(provider, usage, input_="prompt_tokens", output="completion_tokens")
    if "input_tokens" in usage or "output_tokens" in usage:
        if name in ANTHROPIC_PROVIDERS:
            return _anthropic(provider, usage)
        return _openai(provider, usage, input_="input_tokens", output="output_tokens")
    raise UsageShapeError(
        f"{provider} usage: missing required field 'input_tokens' or 'prompt_tokens' "
        f"(got fields: {', '.join(sorted(map(str, usage))) or 'none'})"
    )
