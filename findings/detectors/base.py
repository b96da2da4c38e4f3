"""What every detector and alert rule shares: the candidate it returns and the context it reads.

A rule is a module that declares::

    KIND = FindingKind.…            # the finding kind it raises
    DEFAULTS = {"name": value, …}   # its thresholds; a policy may override any of them
    def detect(ctx: DetectionContext) -> list[Detected]: …

It reads the organization's data for ``ctx.window`` (through ``findings.selectors``)
and returns candidates; ``findings.services.detection`` turns them into findings
(upsert by fingerprint, activity, auto-resolve). A rule never writes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from accounts.models import Provider
from findings.models import FindingConfidence, RemediationKind
from metron.money import quantize_money

if TYPE_CHECKING:
    from accounts.models import Organization
    from findings.models import FindingsPolicy

logger = logging.getLogger(__name__)

DEFAULT_WINDOW_DAYS = 30


@dataclass(frozen=True)
class Scope:
    """What a finding is about; every part may be empty."""

    customer_id: int | None = None
    feature_id: int | None = None
    plan_id: int | None = None
    provider_key_id: int | None = None
    provider: str = ""
    model: str = ""
    environment: str = ""
    prompt_version: str = ""

    def parts(self) -> tuple[str, ...]:
        """The scope as ``name=value`` strings (empty parts left out), for fingerprints."""
        values = {
            "customer": self.customer_id, "feature": self.feature_id, "plan": self.plan_id,
            "provider_key": self.provider_key_id, "provider": self.provider,
            "model": self.model, "environment": self.environment,
            "prompt_version": self.prompt_version,
        }  # fmt: skip
        return tuple(f"{name}={value}" for name, value in values.items() if value not in (None, ""))

    def finding_fields(self) -> dict[str, Any]:
        """The ``Finding`` scope columns this scope sets (all of them, empties included)."""
        return {
            "customer_id": self.customer_id, "feature_id": self.feature_id,
            "plan_id": self.plan_id, "provider_key_id": self.provider_key_id,
            "provider": self.provider, "model": self.model, "environment": self.environment,
            "prompt_version": self.prompt_version,
        }  # fmt: skip


def fingerprint_make(kind: str, parts: tuple[str, ...]) -> str:
    """SHA-256 hex of the kind and the identifying parts: the same condition, the same print."""
    return hashlib.sha256("|".join((str(kind), *parts)).encode()).hexdigest()


@dataclass(frozen=True)
class Detected:
    """One finding candidate produced by a rule.

    ``monthly_savings`` is USD a month (for alerts, the monthly cost at stake), not
    yet rounded; ``evidence`` holds the formula as text, every input, and a daily
    cost series ``series: [{"day": "YYYY-MM-DD", "cost": "12.34"}]`` for the chart.
    ``fingerprint_parts`` identify the condition; empty means the scope's parts.
    """

    kind: str
    title: str
    monthly_savings: Decimal
    confidence: str
    confidence_reason: str
    evidence: dict
    remediation: str
    remediation_kind: str = ""
    scope: Scope = field(default_factory=Scope)
    fingerprint_parts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.monthly_savings, Decimal):
            raise TypeError("monthly_savings must be a Decimal (USD a month)")
        if self.confidence not in FindingConfidence.values:
            raise ValueError(f"unknown confidence {self.confidence!r}")
        if self.remediation_kind and self.remediation_kind not in RemediationKind.values:
            raise ValueError(f"unknown remediation kind {self.remediation_kind!r}")

    @property
    def fingerprint(self) -> str:
        return fingerprint_make(self.kind, self.fingerprint_parts or self.scope.parts())


def window_default(today: date, days: int = DEFAULT_WINDOW_DAYS) -> tuple[date, date]:
    """The last ``days`` full days before ``today``: half-open ``[start, end)``, end = today."""
    return today - timedelta(days=days), today


def _coerce(default: Any, value: Any) -> Any:
    # The default's type is the override's contract: a Decimal threshold given
    # as 0.3 in JSON becomes Decimal("0.3") (through str, never float maths).
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError("expected true or false")
        return value
    if isinstance(default, Decimal):
        if isinstance(value, bool):
            raise ValueError("expected a number")
        try:
            result = Decimal(str(value))
        except InvalidOperation as exc:
            raise ValueError("expected a number") from exc
        if not result.is_finite():
            raise ValueError("expected a finite number")
        return result
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("expected a whole number")
        try:
            return int(value)
        except ValueError:
            raise ValueError("expected a whole number") from None
    if isinstance(default, list | tuple):
        if not isinstance(value, list | tuple):
            raise ValueError("expected a list")
        return type(default)(value)
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise ValueError("expected an object")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError("expected text")
        return value
    return value


def thresholds_validate(defaults: Mapping[str, Any], overrides: Any) -> list[str]:
    """Problems with a rule's overrides (unknown names, wrong types); empty when valid."""
    if overrides in (None, {}):
        return []
    if not isinstance(overrides, dict):
        return ["overrides must be an object of threshold names to values"]
    errors = []
    for name, value in overrides.items():
        if name not in defaults:
            errors.append(f"{name}: unknown threshold (known: {', '.join(sorted(defaults))})")
            continue
        try:
            _coerce(defaults[name], value)
        except ValueError as exc:
            errors.append(f"{name}: {exc}")
    return errors


def thresholds_effective(defaults: Mapping[str, Any], overrides: Any) -> Mapping[str, Any]:
    """The rule's defaults with the policy's valid overrides applied (invalid ones ignored)."""
    effective = dict(defaults)
    if isinstance(overrides, dict):
        for name, value in overrides.items():
            if name not in defaults:
                logger.warning("findings policy: unknown threshold %r ignored", name)
                continue
            try:
                effective[name] = _coerce(defaults[name], value)
            except ValueError as exc:
                # A bad override must not stop every rule: the default stands.
                logger.warning("findings policy: threshold %r ignored (%s)", name, exc)
    return MappingProxyType(effective)


@dataclass(frozen=True)
class DetectionContext:
    """What a rule reads: the organization, the window ``[window_start, window_end)``, the
    policy, and (once bound to a rule with :meth:`for_rule`) the rule's effective thresholds.
    """

    organization: Organization
    policy: FindingsPolicy
    window_start: date
    window_end: date
    now: datetime
    thresholds: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def build(
        cls,
        *,
        organization: Organization,
        policy: FindingsPolicy,
        now: datetime,
        days: int = DEFAULT_WINDOW_DAYS,
    ) -> DetectionContext:
        """A context over the last ``days`` full days (UTC) before ``now``."""
        start, end = window_default(now.date(), days)
        return cls(
            organization=organization, policy=policy, window_start=start, window_end=end, now=now
        )

    @property
    def window(self) -> tuple[date, date]:
        return self.window_start, self.window_end

    @property
    def days(self) -> int:
        """Number of days in the window."""
        return (self.window_end - self.window_start).days

    def for_rule(self, rule: Rule) -> DetectionContext:
        """This context with ``thresholds`` = the rule's defaults under the policy's overrides."""
        thresholds = self.policy.thresholds if isinstance(self.policy.thresholds, dict) else {}
        overrides = thresholds.get(str(rule.KIND))
        return replace(self, thresholds=thresholds_effective(rule.DEFAULTS, overrides))


class Rule(Protocol):
    """A detector or alert module."""

    KIND: str
    DEFAULTS: Mapping[str, Any]

    def detect(self, ctx: DetectionContext) -> list[Detected]: ...


def series_points(rows: list[tuple[date, Decimal]], start: date, end: date) -> list[dict]:
    """A daily cost series for the chart: every day of ``[start, end)``, missing days at 0.

    ``cost`` is a string of USD (JSON has no Decimal).
    """
    by_day: dict[date, Decimal] = {}
    for day, cost in rows:
        by_day[day] = by_day.get(day, Decimal(0)) + (cost or Decimal(0))
    points = []
    day = start
    while day < end:
        points.append({"day": day.isoformat(), "cost": str(by_day.get(day, Decimal(0)))})
        day += timedelta(days=1)
    return points


def usd(amount: Decimal) -> str:
    """``$1,234.56``: an amount in USD rounded to cents, for titles and reasons."""
    return f"${quantize_money(amount):,.2f}"


def decimal_text(value: Decimal, places: int = 4) -> str:
    """A Decimal rounded to ``places`` for evidence (a string: JSON has no Decimal)."""
    return str(value.quantize(Decimal(1).scaleb(-places)))


def pct(value: Decimal) -> str:
    """A fraction of 1 as a percentage with one decimal (0.123 → ``12.3%``)."""
    return f"{(value * 100).quantize(Decimal('0.1'))}%"


def provider_label(provider: str) -> str:
    """A provider's display name (``openai`` → ``OpenAI``)."""
    try:
        return str(Provider(provider).label)
    except ValueError:
        return provider
