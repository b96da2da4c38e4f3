"""Day and month aggregates of usage at the economics grain, refreshed day by day.

Ingestion appends a ``UsageChange`` marker for every day whose rollups changed (ingest,
repricing, catalog merges, reconciliation). :func:`usage_days_refresh` reads the markers,
rebuilds each marked day from the rollups (and the day's ledger rows, for active users and
prompt versions), and adds the difference between the new and the old day to the month
aggregates. A refresh therefore costs what the changed days hold, whatever the size of the
ledger or of the month. Markers are deleted only once their day is rebuilt, in the same
transaction: a change committed meanwhile leaves its own marker for the next refresh.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from accounts.models import Organization
from economics.models import (
    AggregatedDay,
    CustomerFeatureMonth,
    CustomerModelMonth,
    FeatureUserDay,
    FeatureUserMonth,
    PromptVersionDay,
    UsageDay,
)
from ingestion.models import DailyUsage, ReconciliationLine, UsageChange, UsageEvent
from ingestion.reconciliation_math import UNATTRIBUTED, allocate_reconciled_cost

ZERO = Decimal(0)
EVENTS = UsageEvent._meta.db_table
ROLLUPS = DailyUsage._meta.db_table


@dataclass
class RefreshResult:
    """What a refresh rebuilt: the days, and how many day rows they hold."""

    days: list[date] = field(default_factory=list)
    rows: int = 0

    @property
    def months(self) -> set[date]:
        return {day.replace(day=1) for day in self.days}


def _month(day: date) -> date:
    return day.replace(day=1)


def _bills(organization: Organization, day: date) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    """(provider, model) → (invoiced USD, uninstrumented USD) of the day's provider bills."""
    lines = ReconciliationLine.objects.filter(
        organization=organization,
        day=day,
        level=ReconciliationLine.Level.MODEL,
        invoiced_cost__isnull=False,
    ).values_list("provider", "model", "invoiced_cost", "uninstrumented_cost")
    return {(p, m): (invoiced, uninstrumented or ZERO) for p, m, invoiced, uninstrumented in lines}


_SUMS = ("requests", "tokens", "cost", "reconciled_cost", "billed_cost", "unpriced_requests")
_DAY_SUMS = {
    "requests": "requests", "tokens": "tokens", "cost": "cost",
    "reconciled_cost": "reconciled_cost",
    "billed_cost": "CASE WHEN billed THEN reconciled_cost ELSE 0 END",
    "unpriced_requests": "unpriced_requests",
}  # fmt: skip
FEATURE_GRAIN = ("customer_id", "plan_id", "feature_id", "billable")
MODEL_GRAIN = ("customer_id", "plan_id", "provider", "model", "billable")
_MONTHS = ((CustomerFeatureMonth, FEATURE_GRAIN), (CustomerModelMonth, MODEL_GRAIN))


def _month_add(model, grain: tuple[str, ...], sign: int) -> str:
    """SQL adding (``sign`` 1) or taking away (-1) one day's ``UsageDay`` rows to or from
    a month table; returns the ids of the month rows it touched whose sums are now zero."""
    table = model._meta.db_table
    dims = ", ".join(grain)
    sums = ", ".join(f"{sign} * sum({expression})" for expression in _DAY_SUMS.values())
    return f"""
        INSERT INTO {table} (organization_id, month, {dims}, {", ".join(_SUMS)})
        SELECT organization_id, date_trunc('month', day)::date, {dims}, {sums}
        FROM {UsageDay._meta.db_table} WHERE organization_id = %s AND day = %s
        GROUP BY organization_id, date_trunc('month', day), {dims}
        ORDER BY {dims}
        ON CONFLICT ON CONSTRAINT {model._meta.constraints[0].name} DO UPDATE SET
        {", ".join(f"{name} = {table}.{name} + EXCLUDED.{name}" for name in _SUMS)}
        RETURNING id, requests = 0 AND tokens = 0 AND cost = 0 AND reconciled_cost = 0
    """


_INSERT_DAY = f"""
    INSERT INTO {UsageDay._meta.db_table} (organization_id, day, customer_id, plan_id,
        feature_id, provider, model, billable, requests, tokens, cost, reconciled_cost,
        billed, unpriced_requests)
    SELECT organization_id, day, customer_id, plan_id, feature_id, provider, model, billable,
        sum(requests), sum(input_tokens + output_tokens), sum(cost), sum(cost), false,
        sum(unpriced_requests)
    FROM {ROLLUPS} WHERE organization_id = %s AND day = %s
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
"""
_USERS_OUT = f"""
    INSERT INTO {FeatureUserMonth._meta.db_table} AS m (organization_id, month, feature_id,
        plan_id, user_id, days, requests)
    SELECT organization_id, date_trunc('month', day)::date, feature_id, plan_id, user_id,
        %s, %s * requests
    FROM {FeatureUserDay._meta.db_table} WHERE organization_id = %s AND day = %s
    ORDER BY feature_id, plan_id, user_id
    ON CONFLICT ON CONSTRAINT feature_user_month_unique DO UPDATE SET
        days = m.days + EXCLUDED.days, requests = m.requests + EXCLUDED.requests
    RETURNING id, days <= 0
"""
_INSERT_USERS = f"""
    INSERT INTO {FeatureUserDay._meta.db_table} (organization_id, day, feature_id, plan_id,
        user_id, requests)
    SELECT organization_id, %s::date, feature_id, plan_id, user_id, count(*) FROM {EVENTS}
    WHERE organization_id = %s AND timestamp >= %s AND timestamp < %s
      AND billable AND user_id <> ''
    GROUP BY organization_id, feature_id, plan_id, user_id
"""
_INSERT_PROMPTS = f"""
    INSERT INTO {PromptVersionDay._meta.db_table} (organization_id, day, feature_id,
        prompt_version, requests, cost)
    SELECT organization_id, %s::date, feature_id, prompt_version, count(*),
        coalesce(sum(cost), 0)
    FROM {EVENTS}
    WHERE organization_id = %s AND timestamp >= %s AND timestamp < %s
      AND billable AND prompt_version <> ''
    GROUP BY organization_id, feature_id, prompt_version
"""


def _allocate_bills(organization: Organization, day: date) -> Decimal:
    """Spread the day's provider bills over its ``UsageDay`` rows by ledger cost; returns
    the bills' part that no ledger event accounts for (the explicit unattributed line)."""
    bills = _bills(organization, day)
    if not bills:
        return ZERO
    rows = UsageDay.objects.filter(
        organization_id=organization.pk, day=day, provider__in={p for p, _ in bills}
    ).values_list("pk", "provider", "model", "cost")
    by_bill: dict[tuple[str, str], dict[int, Decimal]] = defaultdict(dict)
    for pk, provider, model, cost in rows:
        if (provider, model) in bills:
            by_bill[(provider, model)][pk] = cost
    uninstrumented = ZERO
    updates: list[tuple[int, Decimal]] = []
    for key, (invoiced, dark) in bills.items():
        costs = by_bill.get(key)
        if not costs:  # billed, but not one ledger event: uninstrumented whole
            uninstrumented += invoiced
            continue
        allocated = allocate_reconciled_cost(
            invoiced=invoiced, ledger_costs=costs, uninstrumented_cost=dark
        )
        uninstrumented += allocated.pop(UNATTRIBUTED, ZERO)
        updates.extend((pk, allocated.get(pk, ZERO)) for pk in costs)
    if updates:
        ids, amounts = zip(*updates, strict=True)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {UsageDay._meta.db_table} AS d SET reconciled_cost = u.amount, "
                "billed = true FROM unnest(%s::bigint[], %s::numeric[]) AS u(id, amount) "
                "WHERE d.id = u.id",
                [list(ids), list(amounts)],
            )
    return uninstrumented


def usage_day_rebuild(*, organization: Organization, day: date, reconciled: bool = True) -> int:
    """Rebuild one day's aggregates and move the month aggregates by the difference.

    All in SQL but the bill allocation; must run in a transaction (the callers hold one).
    Returns the number of the day's usage rows.
    """
    org = organization.pk
    start = datetime.combine(day, time.min, tzinfo=UTC)
    end = start + timedelta(days=1)
    emptied: dict[type, list[int]] = {}
    with connection.cursor() as cursor:
        for model, grain in _MONTHS:
            cursor.execute(_month_add(model, grain, -1), [org, day])
            emptied[model] = [pk for pk, zero in cursor.fetchall() if zero]
        cursor.execute(f"DELETE FROM {UsageDay._meta.db_table} WHERE organization_id = %s "
                       "AND day = %s", [org, day])  # fmt: skip
        cursor.execute(_INSERT_DAY, [org, day])
        rows = cursor.rowcount
    uninstrumented = _allocate_bills(organization, day) if reconciled else ZERO
    with connection.cursor() as cursor:
        for model, grain in _MONTHS:
            cursor.execute(_month_add(model, grain, 1), [org, day])
            cursor.fetchall()
            # Rows the day emptied and nothing refilled: gone, so a month holds only what it has.
            cursor.execute(
                f"DELETE FROM {model._meta.db_table} WHERE id = ANY(%s) AND requests = 0 "
                "AND tokens = 0 AND cost = 0 AND reconciled_cost = 0",
                [emptied[model]],
            )
        cursor.execute(_USERS_OUT, [-1, -1, org, day])
        emptied_users = [pk for pk, gone in cursor.fetchall() if gone]
        cursor.execute(f"DELETE FROM {FeatureUserDay._meta.db_table} WHERE organization_id = %s "
                       "AND day = %s", [org, day])  # fmt: skip
        cursor.execute(_INSERT_USERS, [day, org, start, end])
        cursor.execute(_USERS_OUT, [1, 1, org, day])
        cursor.fetchall()
        cursor.execute(
            f"DELETE FROM {FeatureUserMonth._meta.db_table} WHERE id = ANY(%s) AND days <= 0",
            [emptied_users],
        )
        cursor.execute(f"DELETE FROM {PromptVersionDay._meta.db_table} "
                       "WHERE organization_id = %s AND day = %s", [org, day])  # fmt: skip
        cursor.execute(_INSERT_PROMPTS, [day, org, start, end])

    sums = UsageDay.objects.filter(organization_id=org, day=day).aggregate(
        day_requests=Sum("requests", default=0),
        day_cost=Sum("cost", default=ZERO),
        day_reconciled=Sum("reconciled_cost", default=ZERO),
        day_billable=Sum("reconciled_cost", filter=Q(billable=True), default=ZERO),
    )
    AggregatedDay.objects.update_or_create(
        organization_id=org, day=day,
        defaults={
            "rebuilt_at": timezone.now(), "requests": sums["day_requests"],
            "cost": sums["day_cost"], "reconciled_cost": sums["day_reconciled"] + uninstrumented,
            "billable_cost": sums["day_billable"], "uninstrumented_cost": uninstrumented,
        },
    )  # fmt: skip
    return rows


def _rebuild_day(organization: Organization, day: date, *, reconciled: bool, wait: bool):
    """Rebuild a day and delete the markers that were there when it started: one committed
    during the rebuild stays for the next refresh. Without ``wait``, a day another refresh
    holds is skipped (returns None)."""
    with transaction.atomic():
        markers = UsageChange.objects.filter(organization_id=organization.pk, day=day)
        marker_ids = list(
            markers.select_for_update(skip_locked=not wait).values_list("pk", flat=True)
        )
        if not marker_ids and not wait:
            return None
        rows = usage_day_rebuild(organization=organization, day=day, reconciled=reconciled)
        UsageChange.objects.filter(pk__in=marker_ids).delete()
        return rows


def usage_days_refresh(
    *, organization: Organization, reconciled: bool = True, limit: int | None = None
) -> RefreshResult:
    """Rebuild every day ingestion marked changed (oldest first), one transaction per day."""
    result = RefreshResult()
    pending = (
        UsageChange.objects.filter(organization_id=organization.pk)
        .order_by("day")
        .values_list("day", flat=True)
        .distinct()
    )
    for day in list(pending[:limit] if limit else pending):
        rows = _rebuild_day(organization, day, reconciled=reconciled, wait=False)
        if rows is not None:
            result.rows += rows
            result.days.append(day)
    return result


def _month_sql(organization_id: int, start: date, end: date) -> list[tuple[str, list]]:
    """The statements that rebuild every aggregate of ``[start, end)`` (one calendar month)
    from the rollups and the ledger: one pass per table instead of one per day."""
    org = organization_id
    days = [org, start, end]
    moments = [
        org, datetime.combine(start, time.min, tzinfo=UTC),
        datetime.combine(end, time.min, tzinfo=UTC),
    ]  # fmt: skip
    by_day = "organization_id = %s AND day >= %s AND day < %s"
    by_time = "organization_id = %s AND timestamp >= %s AND timestamp < %s"
    utc_day = "(timestamp AT TIME ZONE 'UTC')::date"
    statements = [
        (f"DELETE FROM {table._meta.db_table} WHERE {by_day}", days)
        for table in (UsageDay, FeatureUserDay, PromptVersionDay, AggregatedDay)
    ]
    statements += [
        (f"DELETE FROM {table._meta.db_table} WHERE organization_id = %s AND month = %s",
         [org, start])
        for table in (CustomerFeatureMonth, CustomerModelMonth, FeatureUserMonth)
    ]  # fmt: skip
    statements.append((
        _INSERT_DAY.replace("AND day = %s", "AND day >= %s AND day < %s"), days,
    ))  # fmt: skip
    statements.append((f"""
        INSERT INTO {FeatureUserDay._meta.db_table} (organization_id, day, feature_id, plan_id,
            user_id, requests)
        SELECT organization_id, {utc_day}, feature_id, plan_id, user_id, count(*)
        FROM {EVENTS} WHERE {by_time} AND billable AND user_id <> ''
        GROUP BY organization_id, {utc_day}, feature_id, plan_id, user_id
    """, moments))  # fmt: skip
    statements.append((f"""
        INSERT INTO {PromptVersionDay._meta.db_table} (organization_id, day, feature_id,
            prompt_version, requests, cost)
        SELECT organization_id, {utc_day}, feature_id, prompt_version, count(*),
            coalesce(sum(cost), 0)
        FROM {EVENTS} WHERE {by_time} AND billable AND prompt_version <> ''
        GROUP BY organization_id, {utc_day}, feature_id, prompt_version
    """, moments))  # fmt: skip
    return statements


def _month_totals_sql(organization_id: int, start: date, end: date) -> list[tuple[str, list]]:
    """Month tables and day totals from the rebuilt day tables (after bills are spread)."""
    days = [organization_id, start, end]
    by_day = "organization_id = %s AND day >= %s AND day < %s"
    sums = ", ".join(f"sum({expression})" for expression in _DAY_SUMS.values())
    statements = []
    for model, grain in _MONTHS:
        dims = ", ".join(grain)
        statements.append((f"""
            INSERT INTO {model._meta.db_table} (organization_id, month, {dims},
                {", ".join(_SUMS)})
            SELECT organization_id, %s::date, {dims}, {sums}
            FROM {UsageDay._meta.db_table} WHERE {by_day}
            GROUP BY organization_id, {dims}
        """, [start, *days]))  # fmt: skip
    statements.append((f"""
        INSERT INTO {FeatureUserMonth._meta.db_table} (organization_id, month, feature_id,
            plan_id, user_id, days, requests)
        SELECT organization_id, %s::date, feature_id, plan_id, user_id, count(*), sum(requests)
        FROM {FeatureUserDay._meta.db_table} WHERE {by_day}
        GROUP BY organization_id, feature_id, plan_id, user_id
    """, [start, *days]))  # fmt: skip
    statements.append((f"""
        INSERT INTO {AggregatedDay._meta.db_table} (organization_id, day, rebuilt_at, requests,
            cost, reconciled_cost, billable_cost, uninstrumented_cost)
        SELECT organization_id, day, now(), sum(requests), sum(cost), sum(reconciled_cost),
            coalesce(sum(reconciled_cost) FILTER (WHERE billable), 0), 0
        FROM {UsageDay._meta.db_table} WHERE {by_day}
        GROUP BY organization_id, day
    """, days))  # fmt: skip
    return statements


def usage_months_rebuild(
    *, organization: Organization, months: Iterable[date], reconciled: bool = True
) -> RefreshResult:
    """Rebuild whole calendar months (the full recompute), each in one transaction with one
    statement per table; the provider bills of each billed day are then spread as a day
    rebuild spreads them. Marks of the month's days present at the start are consumed."""
    result = RefreshResult()
    for month in sorted(set(months)):
        start = month.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        with transaction.atomic():
            markers = UsageChange.objects.filter(
                organization_id=organization.pk, day__gte=start, day__lt=end
            )
            marker_ids = list(markers.select_for_update().values_list("pk", flat=True))
            with connection.cursor() as cursor:
                for sql, params in _month_sql(organization.pk, start, end):
                    cursor.execute(sql, params)
                    if sql.lstrip().startswith(f"INSERT INTO {UsageDay._meta.db_table}"):
                        result.rows += cursor.rowcount
            uninstrumented: dict[date, Decimal] = {}
            if reconciled:
                billed_days = (
                    ReconciliationLine.objects.filter(
                        organization=organization, day__gte=start, day__lt=end,
                        level=ReconciliationLine.Level.MODEL, invoiced_cost__isnull=False,
                    )
                    .order_by("day")
                    .values_list("day", flat=True)
                    .distinct()
                )  # fmt: skip
                for day in billed_days:
                    uninstrumented[day] = _allocate_bills(organization, day)
            with connection.cursor() as cursor:
                for sql, params in _month_totals_sql(organization.pk, start, end):
                    cursor.execute(sql, params)
            for day, amount in uninstrumented.items():
                if amount:
                    AggregatedDay.objects.update_or_create(
                        organization_id=organization.pk, day=day,
                        defaults={"rebuilt_at": timezone.now(), "uninstrumented_cost": amount},
                    )  # fmt: skip
                    AggregatedDay.objects.filter(organization_id=organization.pk, day=day).update(
                        reconciled_cost=F("reconciled_cost") + amount
                    )
            UsageChange.objects.filter(pk__in=marker_ids).delete()
            result.days.extend(
                AggregatedDay.objects.filter(
                    organization_id=organization.pk, day__gte=start, day__lt=end
                ).values_list("day", flat=True)
            )
    return result
