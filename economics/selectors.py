"""Reads of economics: the policy in force and the period snapshots."""

from __future__ import annotations

from datetime import date, datetime

from django.db.models import F, Q, QuerySet

from accounts.models import Organization
from economics.calculations import CENT, Policy
from economics.models import CustomerEconomics, EconomicsPolicy, EconomicsSnapshot
from ingestion.models import UsageChange


class PeriodError(ValueError):
    """A period the caller named cannot be read (``str()`` says why)."""


def economics_policy_get(*, organization: Organization) -> EconomicsPolicy:
    """The organization's policy; an unsaved one with the defaults if finance never set it."""
    policy = EconomicsPolicy.objects.filter(organization=organization).first()
    return policy or EconomicsPolicy(organization=organization)


def calculation_policy(policy: EconomicsPolicy, *, days: int, month_days: int) -> Policy:
    """The calculator's policy for a period of ``days`` days; the monthly overhead is
    scaled by ``days / month_days`` and rounded to cents."""
    overhead = policy.monthly_overhead
    if days != month_days:
        overhead = (overhead * days / month_days).quantize(CENT)
    return Policy(
        watch_threshold=policy.watch_threshold,
        at_risk_threshold=policy.at_risk_threshold,
        margin_negative_threshold=policy.margin_negative_threshold,
        underwater_threshold=policy.underwater_threshold,
        break_even_band=policy.break_even_band,
        tail_ratio=policy.tail_ratio,
        overhead_rule=policy.overhead_rule,
        overhead=overhead,
    )


def snapshot_list(*, organization: Organization) -> QuerySet[EconomicsSnapshot]:
    return EconomicsSnapshot.objects.filter(organization=organization)


def parse_period(value: str | None) -> tuple[str, date | None]:
    """``YYYY-MM`` → (month, its first day); ``rolling_30d`` or empty → latest of that kind.

    Raises PeriodError on anything else.
    """
    if not value:
        return EconomicsSnapshot.Kind.MONTH, None
    if value == EconomicsSnapshot.Kind.ROLLING_30D:
        return EconomicsSnapshot.Kind.ROLLING_30D, None
    try:
        year, month = value.split("-")
        return EconomicsSnapshot.Kind.MONTH, date(int(year), int(month), 1)
    except ValueError:
        raise PeriodError(
            f"period must be YYYY-MM or {EconomicsSnapshot.Kind.ROLLING_30D!s} (got {value!r})."
        ) from None


def snapshot_get(
    *, organization: Organization, kind: str = "month", period_start: date | None = None
) -> EconomicsSnapshot | None:
    """The snapshot of a period; without ``period_start`` the latest of ``kind``."""
    snapshots = snapshot_list(organization=organization).filter(kind=kind)
    if period_start is not None:
        snapshots = snapshots.filter(period_start=period_start)
    return snapshots.order_by("-period_start").first()


def snapshot_stale_since(*, snapshot: EconomicsSnapshot) -> datetime | None:
    """When the snapshot's inputs first changed after its "as of", or None if current.

    Changes not yet processed count too: a day of the period marked changed by ingestion
    after the snapshot was computed, or a policy edit since.
    """
    candidates = [snapshot.stale_since] if snapshot.stale_since else []
    changed = (
        UsageChange.objects.filter(
            organization_id=snapshot.organization_id,
            day__gte=snapshot.period_start,
            day__lt=snapshot.period_end,
            created_at__gt=snapshot.as_of,
        )
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if changed:
        candidates.append(changed)
    policy = EconomicsPolicy.objects.filter(organization_id=snapshot.organization_id).first()
    if policy is not None and policy.updated_at > snapshot.as_of:
        candidates.append(policy.updated_at)
    return min(candidates, default=None)


def customer_economics_list(*, snapshot: EconomicsSnapshot) -> QuerySet[CustomerEconomics]:
    """A snapshot's customer rows with their customer and plan (no N+1)."""
    return CustomerEconomics.objects.filter(snapshot=snapshot).select_related("customer", "plan")


# --- dashboards ---------------------------------------------------------------------------

# Sort keys the dashboards offer → ORM ordering. A missing ratio means cost without revenue:
# the worst case, so it sorts as the highest ratio.
CUSTOMER_ORDERINGS: dict[str, tuple] = {
    "name": ("customer__name",),
    "plan": ("plan__name",),
    "ai_cost": ("ai_cost",),
    "cost_to_serve": ("cost_to_serve",),
    "revenue": ("revenue",),
    "cost_ratio": (F("cost_ratio").asc(nulls_last=True), "ai_cost"),
    "contribution_margin": ("contribution_margin",),
    "contribution_margin_pct": (F("contribution_margin_pct").asc(nulls_first=True),),
    "cost_change": (F("cost_change").asc(nulls_first=True),),
}
NO_PLAN = "none"


def snapshot_periods(*, organization: Organization) -> list[tuple[str, date, date]]:
    """(kind, period_start, period_end) of every snapshot, newest first, months before the
    rolling 30 days of the same start."""
    return list(
        snapshot_list(organization=organization)
        .order_by("-period_start", "kind")
        .values_list("kind", "period_start", "period_end")
    )


def snapshot_for_period(
    *, organization: Organization, period: str | None
) -> EconomicsSnapshot | None:
    """The snapshot a dashboard shows for ``period`` (``YYYY-MM`` or ``rolling_30d``);
    without one, the latest month, else the latest rolling 30 days. Raises PeriodError."""
    kind, start = parse_period(period)
    snapshot = snapshot_get(organization=organization, kind=kind, period_start=start)
    if snapshot is None and not period:
        snapshot = snapshot_get(organization=organization, kind=EconomicsSnapshot.Kind.ROLLING_30D)
    return snapshot


def customer_economics_search(
    *,
    snapshot: EconomicsSnapshot,
    band: str | None = None,
    plan: str | None = None,
    underwater: bool | None = None,
    search: str | None = None,
    order: str = "-cost_ratio",
) -> QuerySet[CustomerEconomics]:
    """A snapshot's customer rows filtered by band, plan code (``"none"``: no plan),
    underwater and a name / customer id fragment, in ``order`` (a CUSTOMER_ORDERINGS key,
    "-" for descending; unknown keys fall back to the worst cost ratio first)."""
    rows = customer_economics_list(snapshot=snapshot)
    if band:
        rows = rows.filter(band=band)
    if plan == NO_PLAN:
        rows = rows.filter(plan__isnull=True)
    elif plan:
        rows = rows.filter(plan__code=plan)
    if underwater is not None:
        rows = rows.filter(underwater=underwater)
    if search:
        rows = rows.filter(Q(customer__name__icontains=search) | Q(customer__external_id=search))
    descending = order.startswith("-")
    ordering = CUSTOMER_ORDERINGS.get(order.lstrip("-"))
    if ordering is None:
        ordering, descending = CUSTOMER_ORDERINGS["cost_ratio"], True
    keys = [_reverse(key) if descending else key for key in ordering]
    return rows.order_by(*keys, "customer__name", "pk")


def _reverse(key):
    if isinstance(key, str):
        return key[1:] if key.startswith("-") else f"-{key}"
    return key.copy().reverse_ordering()


def customer_economics_underwater(
    *, snapshot: EconomicsSnapshot, limit: int = 10
) -> QuerySet[CustomerEconomics]:
    """The snapshot's underwater customers with the most AI cost first: the dollars at
    stake, rather than the ratio (a $0.15 Free account's infinite ratio is not the
    first problem to look at)."""
    return customer_economics_search(snapshot=snapshot, underwater=True).order_by(
        "-ai_cost", "customer__external_id"
    )[:limit]


def customer_economics_get(
    *, snapshot: EconomicsSnapshot, customer_id: int
) -> CustomerEconomics | None:
    """One customer's row in a snapshot (``customer_id`` is Metron's customer pk)."""
    return customer_economics_list(snapshot=snapshot).filter(customer_id=customer_id).first()


def customer_economics_previous(*, row: CustomerEconomics) -> CustomerEconomics | None:
    """The same customer in the previous period's snapshot of the same kind, if any."""
    previous_start = (row.snapshot.summary or {}).get("previous_period_start")
    if not previous_start:
        return None
    return (
        CustomerEconomics.objects.filter(
            snapshot__organization_id=row.snapshot.organization_id,
            snapshot__kind=row.snapshot.kind,
            snapshot__period_start=date.fromisoformat(previous_start),
            customer_id=row.customer_id,
        )
        .select_related("snapshot")
        .first()
    )
