"""The weekly review as CSV and Markdown (pure functions of a ``WeeklyReview``).

Money is rounded here, once, to cents (half-up); cost per request keeps six places,
since it is a fraction of a cent.

The CSV is one table with a ``section`` column, so a spreadsheet can filter by it:
``negative_margin_path``, ``prompt_version_change``, ``budget_change``,
``tenant_action`` and ``outlier_without_action``. Money columns are plain decimals in
USD (no symbol, no thousands separator).
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from findings.selectors_review import WeeklyReview

CENT = Decimal("0.01")
PER_REQUEST = Decimal("0.000001")
# Characters that make a spreadsheet read a text cell as a formula (names come from
# customers and staff).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = (
    "section", "rank", "subject", "plan", "prompt_version", "from", "to", "cost", "revenue",
    "margin", "monthly_impact", "date", "details",
)  # fmt: skip


def _round(value: Decimal | None, places: Decimal = CENT) -> Decimal | None:
    return None if value is None else value.quantize(places, rounding=ROUND_HALF_UP)


def _plain(value: Decimal | None, places: Decimal = CENT) -> str:
    """A decimal for the CSV: ``-1234.50``; empty for none."""
    rounded = _round(value, places)
    return "" if rounded is None else str(rounded)


def _usd(value: Decimal | None, places: Decimal = CENT) -> str:
    """Dollars for reading: ``$1,234.50``, ``-$12.00``; ``—`` for none."""
    rounded = _round(value, places)
    if rounded is None:
        return "—"
    text = f"${abs(rounded):,}"
    return f"-{text}" if rounded < 0 else text


def _pct(value: Decimal | None) -> str:
    """A fraction of 1 as a signed percent with one place: ``+25.0 %``; ``—`` for none."""
    if value is None:
        return "—"
    percent = (value * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{'+' if percent > 0 else ''}{percent} %"


def _rows(review: WeeklyReview) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for rank, path in enumerate(review.negative_margin_paths, 1):
        top = path.prompt_versions[0].prompt_version if path.prompt_versions else ""
        rows.append({
            "section": "negative_margin_path", "rank": rank,
            "subject": path.feature_key or path.feature_name, "plan": path.plan_code,
            "prompt_version": top, "cost": _plain(path.cost), "revenue": _plain(path.revenue),
            "margin": _plain(path.margin),
            "details": f"{path.active_users} active users; {path.invocations} invocations; "
            f"band {path.band or 'unknown'}",
        })  # fmt: skip
    for rank, change in enumerate(review.prompt_version_changes, 1):
        rows.append({
            "section": "prompt_version_change", "rank": rank,
            "subject": change.feature_key or change.feature_name,
            "prompt_version": change.prompt_version,
            "from": _plain(change.cost_per_request_before, PER_REQUEST),
            "to": _plain(change.cost_per_request_after, PER_REQUEST),
            "cost": _plain(change.cost_after),
            "monthly_impact": _plain(change.monthly_margin_impact),
            "date": change.first_seen.isoformat(),
            "details": f"cost per request {_pct(change.cost_per_request_change_pct)} vs "
            f"{', '.join(change.previous_versions)}; {change.requests_after} requests on it, "
            f"{change.feature_requests_in_week} on the feature this week",
        })  # fmt: skip
    for rank, budget in enumerate(review.budget_changes, 1):
        rows.append({
            "section": "budget_change", "rank": rank, "subject": budget.budget_name,
            "from": budget.from_state, "to": budget.to_state, "cost": _plain(budget.spend),
            "date": budget.at.date().isoformat(),
            "details": f"{budget.scope_label}; limit {_plain(budget.limit)} for "
            f"{budget.month:%Y-%m}",
        })  # fmt: skip
    for rank, action in enumerate(review.tenant_actions, 1):
        rows.append({
            "section": "tenant_action", "rank": rank,
            "subject": action.customer_name or action.customer_external_id or "",
            "plan": action.plan_code or "", "to": action.state,
            "monthly_impact": _plain(action.estimated_monthly_savings),
            "date": action.last_change_at.date().isoformat(),
            "details": f"{action.kind}: {action.title}",
        })  # fmt: skip
    for rank, tenant in enumerate(review.outliers_without_action, 1):
        why = [
            w for w, on in (("underwater", tenant.underwater), ("plan tail", tenant.in_tail)) if on
        ]
        rows.append({
            "section": "outlier_without_action", "rank": rank,
            "subject": f"{tenant.customer_name} ({tenant.customer_external_id})",
            "plan": tenant.plan_code or "", "cost": _plain(tenant.ai_cost),
            "revenue": _plain(tenant.revenue), "margin": _plain(tenant.contribution_margin),
            "details": f"{' and '.join(why)}; band {tenant.band}; cost ratio "
            f"{_pct(tenant.cost_ratio) if tenant.cost_ratio is not None else 'n/a (no revenue)'}",
        })  # fmt: skip
    return rows


def _csv_cell(value: object) -> object:
    """Text that a spreadsheet would run as a formula gets a leading quote; numbers
    (``-12.50``) stay numbers."""
    if not isinstance(value, str) or not value.startswith(FORMULA_START):
        return value
    try:
        Decimal(value)
    except ArithmeticError:
        return f"'{value}"
    return value


def weekly_review_csv(review: WeeklyReview) -> str:
    """The review as CSV text (one table, a ``section`` column; see the module docstring)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    for row in _rows(review):
        writer.writerow({key: _csv_cell(value) for key, value in row.items()})
    return out.getvalue()


def _cell(value: object) -> str:
    # A pipe would split a Markdown table cell; newlines would end the row.
    return " ".join(str(value).replace("|", "\\|").split())


def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return lines


def weekly_review_markdown(review: WeeklyReview) -> str:
    """The review as a Markdown document: a heading per section, a table per list."""
    last_day = review.week_end - timedelta(days=1)
    lines = [
        f"# Weekly review — {review.organization_name}",
        "",
        f"Week {review.week_start.isoformat()} to {last_day.isoformat()} (UTC).",
    ]
    if review.snapshot_id is None:
        lines.append("No economics snapshot covers this week: margins and outliers are missing.")
    else:
        kind = "rolling 30 days" if review.snapshot_kind == "rolling_30d" else "calendar month"
        stale = " (stale: inputs changed since)" if review.snapshot_stale else ""
        lines.append(
            f"Margins from the {kind} {review.snapshot_period_start.isoformat()} to "
            f"{review.snapshot_period_end.isoformat()} (exclusive), as of "
            f"{review.snapshot_as_of:%Y-%m-%d %H:%M} UTC{stale}."
        )

    lines += ["", "## Top negative-margin feature paths", ""]
    if review.negative_margin_paths:
        lines += _table(
            ("#", "Feature", "Plan", "Cost", "Revenue", "Margin", "Margin %", "Prompt versions"),
            [
                (rank, f"{p.feature_name} (`{p.feature_key}`)" if p.feature_key else p.feature_name,
                 p.plan_code, _usd(p.cost), _usd(p.revenue), _usd(p.margin), _pct(p.margin_pct),
                 ", ".join(f"{v.prompt_version} {_usd(v.cost_per_request, PER_REQUEST)}/req"
                           for v in p.prompt_versions) or "—")
                for rank, p in enumerate(review.negative_margin_paths, 1)
            ],
        )  # fmt: skip
        lines += [
            "",
            "Revenue of a path = its active users × the plan's revenue per active user.",
        ]
    else:
        lines.append("No feature path lost money.")

    lines += ["", "## Prompt-version changes", ""]
    if review.prompt_version_changes:
        lines += _table(
            ("Feature", "New version", "First used", "Cost/request before", "After", "Change",
             "Margin impact /mo"),
            [
                (c.feature_name, f"{c.prompt_version} (was {', '.join(c.previous_versions)})",
                 c.first_seen.isoformat(), _usd(c.cost_per_request_before, PER_REQUEST),
                 _usd(c.cost_per_request_after, PER_REQUEST),
                 _pct(c.cost_per_request_change_pct), _usd(c.monthly_margin_impact))
                for c in review.prompt_version_changes
            ],
        )  # fmt: skip
    else:
        lines.append("No prompt version was introduced this week.")

    lines += ["", "## Budget threshold changes", ""]
    if review.budget_changes:
        lines += _table(
            ("When", "Budget", "Scope", "From", "To", "Spend", "Limit"),
            [
                (f"{b.at:%Y-%m-%d %H:%M}", b.budget_name, b.scope_label, b.from_state,
                 b.to_state, _usd(b.spend), _usd(b.limit))
                for b in review.budget_changes
            ],
        )  # fmt: skip
    else:
        lines.append("No budget changed state.")

    lines += ["", "## Pricing and quota actions for outlier tenants", ""]
    if review.tenant_actions:
        lines += _table(
            ("Customer", "Plan", "Action", "Title", "State", "Est. savings /mo", "Last change"),
            [
                (a.customer_name or "—", a.plan_code or "—", a.kind, a.title, a.state,
                 _usd(a.estimated_monthly_savings), f"{a.last_change_at:%Y-%m-%d}")
                for a in review.tenant_actions
            ],
        )  # fmt: skip
    else:
        lines.append("No pricing, quota or contact action this week.")
    lines += ["", "### Outliers without an action yet", ""]
    if review.outliers_without_action:
        lines += _table(
            ("Customer", "Plan", "AI cost", "Revenue", "Margin", "Cost ratio", "Why"),
            [
                (f"{t.customer_name} ({t.customer_external_id})", t.plan_code or "—",
                 _usd(t.ai_cost), _usd(t.revenue), _usd(t.contribution_margin),
                 _pct(t.cost_ratio).lstrip("+") if t.cost_ratio is not None else "no revenue",
                 " and ".join(w for w, on in (("underwater", t.underwater),
                                              ("plan tail", t.in_tail)) if on))
                for t in review.outliers_without_action
            ],
        )  # fmt: skip
        if review.outlier_count > len(review.outliers_without_action):
            lines += ["", f"{review.outlier_count} in all; the costliest are shown."]
    else:
        lines.append("Every underwater or plan-tail tenant has an action.")
    return "\n".join(lines) + "\n"
