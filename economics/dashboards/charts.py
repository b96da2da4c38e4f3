"""Chart payloads for the dashboards: Chart.js configs whose numbers are exact decimal strings.

Each payload is ``{"type", "format"?, "data": {"labels", "datasets", "markers"?}, "options"?}``
(``format`` "count" when the values are accounts, else USD); the page
puts it in a ``json_script`` tag and ``economics/dashboard.js`` hands it to the Chart.js that
the admin theme bundles. Chart.js reads numeric strings, so money never becomes a float here.
``markers`` are vertical lines at ``at`` on the x scale (a fractional bar index on a bar
chart), labelled with ``label`` and the exact ``value``.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from economics.dashboards.pages import feature_name
from economics.formatting import decimal_text, money
from economics.models import CustomerEconomics, EconomicsSnapshot

REVENUE_COLOR = "var(--color-primary-600)"
COST_COLOR = "#f97316"
MARGIN_COLOR = "#16a34a"
MARKER_COLORS = {"Median": "#2563eb", "P95": "#9333ea", "Tail from": "#dc2626"}


def margin_trend_chart(snapshot: EconomicsSnapshot) -> dict:
    """Revenue, AI cost and contribution margin per trend bucket (day, week or month)."""
    trend = snapshot.trend or []
    return {
        "type": "line",
        "data": {
            "labels": [point["start"] for point in trend],
            "datasets": [
                _line("Revenue (USD)", [point.get("revenue") for point in trend], REVENUE_COLOR),
                _line("AI cost (USD)", [point.get("cost") for point in trend], COST_COLOR),
                _line("Margin (USD)", [point.get("margin") for point in trend], MARGIN_COLOR),
            ],
        },
    }


def _line(label: str, values: list, color: str) -> dict:
    return {
        "label": label,
        "data": [_exact(value) for value in values],
        "borderColor": color,
        "backgroundColor": color,
    }


def _exact(value) -> str | None:
    """A snapshot amount as an exact decimal string (``None`` stays a gap in the chart)."""
    return None if value is None else decimal_text(value)


def feature_cost_chart(snapshot: EconomicsSnapshot) -> dict:
    """AI cost per feature over all plans, costliest first (horizontal bars)."""
    rows = [item for item in snapshot.features if item.get("plan") is None]
    return {
        "type": "bar",
        "data": {
            "labels": [feature_name(item) for item in rows],
            "datasets": [
                {
                    "label": "AI cost (USD)",
                    "data": [_exact(item.get("cost")) for item in rows],
                    "backgroundColor": COST_COLOR,
                }
            ],
        },
        "options": {"indexAxis": "y"},
    }


def plan_distribution_chart(plan: dict) -> dict | None:
    """Accounts per bin of per-account AI cost, with the median, P95 and tail threshold
    marked; ``None`` when the plan has no accounts to draw."""
    bins = plan.get("distribution") or []
    if not bins:
        return None
    markers = [
        _marker(label, plan.get(key), bins)
        for label, key in (
            ("Median", "cost_median"), ("P95", "cost_p95"), ("Tail from", "tail_threshold"),
        )
        if plan.get(key) is not None
    ]  # fmt: skip
    return {
        "type": "bar",
        "format": "count",
        "data": {
            "labels": [f"{money(b['lo'])}–{money(b['hi'])}" for b in bins],
            "datasets": [
                {
                    "label": "Accounts",
                    "data": [b["accounts"] for b in bins],
                    "backgroundColor": REVENUE_COLOR,
                }
            ],
            "markers": markers,
        },
    }


def _marker(label: str, value, bins: list[dict]) -> dict:
    return {
        "label": label,
        "value": _exact(value),
        "at": decimal_text(bin_position(Decimal(str(value)), bins), min_places=0),
        "color": MARKER_COLORS[label],
    }


def bin_position(value: Decimal, bins: list[dict]) -> Decimal:
    """Where ``value`` falls on a bar chart of ``bins`` ({"lo", "hi"}, ascending): bar ``i``
    spans ``i − 0.5 … i + 0.5``; values outside the bins sit on the nearest edge."""
    last = len(bins) - 1
    for index, item in enumerate(bins):
        lo, hi = Decimal(str(item["lo"])), Decimal(str(item["hi"]))
        if value < hi or index == last:
            if hi == lo:  # a bin of one value: its left edge, middle or right edge
                fraction = Decimal((value > lo) - (value < lo) + 1) / 2
            else:
                fraction = min(max((value - lo) / (hi - lo), Decimal(0)), Decimal(1))
            return index - Decimal("0.5") + fraction
    return Decimal(0)


def underwater_chart(rows: Iterable[CustomerEconomics]) -> dict:
    """AI cost against revenue of the top underwater accounts (revenue may be zero, so the
    chart shows both amounts rather than their ratio)."""
    rows = list(rows)
    return {
        "type": "bar",
        "data": {
            "labels": [row.customer.name or row.customer.external_id for row in rows],
            "datasets": [
                {
                    "label": "AI cost (USD)",
                    "data": [_exact(row.ai_cost) for row in rows],
                    "backgroundColor": COST_COLOR,
                },
                {
                    "label": "Revenue (USD)",
                    "data": [_exact(row.revenue) for row in rows],
                    "backgroundColor": REVENUE_COLOR,
                },
            ],
        },
        "options": {"indexAxis": "y"},
    }


PALETTE = ("#7c3aed", "#f97316", "#16a34a", "#2563eb", "#dc2626", "#0891b2", "#ca8a04", "#db2777")


def feature_trend_chart(snapshot: EconomicsSnapshot, *, limit: int = len(PALETTE)) -> dict | None:
    """AI cost per bucket (day, week or month) of the costliest ``limit`` features."""
    trend = snapshot.feature_trend or {}
    series = trend.get("series") or {}
    if not series:
        return None
    names = {item.get("feature") or "unattributed": feature_name(item)
             for item in snapshot.features}  # fmt: skip
    totals = {key: sum((Decimal(v) for v in values if v is not None), Decimal(0))
              for key, values in series.items()}  # fmt: skip
    keys = sorted(series, key=lambda key: (-totals[key], key))[:limit]
    return {
        "type": "line",
        "data": {
            "labels": [start for start, _ in trend.get("buckets", [])],
            "datasets": [
                {**_line(f"{names.get(key, key)} (USD)", series[key], color), "fill": False}
                for key, color in zip(keys, PALETTE, strict=False)
            ],
        },
    }
