"""The weekly review as an admin page (issue #6 point 6): the four sections as tables, a
week picker and the CSV / Markdown downloads. Reads ``weekly_review``; exports with
``findings.review_export``; shapes the rows for the template and nothing else."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from findings.admin.common import STATE_LABELS, admin_url, usd
from findings.models import Budget, Finding, RemediationItem, RemediationState
from findings.review_export import weekly_review_csv, weekly_review_markdown
from findings.selectors_review import WEEK, WeeklyReview, week_start_default, weekly_review

REVIEW_PERMISSION = "findings.view_finding"
WEEKS_OFFERED = 12
PER_REQUEST = Decimal("0.000001")
EXPORTS = {
    "csv": ("text/csv; charset=utf-8", "csv", weekly_review_csv),
    "md": ("text/markdown; charset=utf-8", "md", weekly_review_markdown),
}


def review_url(week: date | None = None, export: str | None = None) -> str:
    url = reverse("admin:findings_weekly_review")
    query = []
    if week is not None:
        query.append(f"week={week.isoformat()}")
    if export:
        query.append(f"format={export}")
    return f"{url}?{'&'.join(query)}" if query else url


def pct(value: Decimal | None, *, signed: bool = False) -> str:
    if value is None:
        return "—"
    percent = (value * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    sign = "+" if signed and percent > 0 else ""
    return f"{sign}{percent} %"


def per_request(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return f"${value.quantize(PER_REQUEST, rounding=ROUND_HALF_UP)}"


def cell(text, *, url: str | None = None, numeric: bool = False, label: str | None = None):
    return {"text": text, "url": url, "numeric": numeric, "label": label}


def sections(review: WeeklyReview) -> list[dict]:
    """The review's four parts as tables: headers, rows of cells, what to say when empty."""
    paths = [
        [
            cell(rank),
            cell(f"{p.feature_name}" + (f" ({p.feature_key})" if p.feature_key else "")),
            cell(p.plan_code),
            cell(usd(p.cost), numeric=True),
            cell(usd(p.revenue), numeric=True),
            cell(usd(p.margin), numeric=True),
            cell(pct(p.margin_pct), numeric=True),
            cell(
                ", ".join(
                    f"{v.prompt_version} {per_request(v.cost_per_request)}/req"
                    for v in p.prompt_versions
                )
                or "—"
            ),  # fmt: skip
        ]
        for rank, p in enumerate(review.negative_margin_paths, 1)
    ]
    changes = [
        [
            cell(c.feature_name),
            cell(c.prompt_version),
            cell(", ".join(c.previous_versions) or "—"),
            cell(c.first_seen.isoformat()),
            cell(per_request(c.cost_per_request_before), numeric=True),
            cell(per_request(c.cost_per_request_after), numeric=True),
            cell(pct(c.cost_per_request_change_pct, signed=True), numeric=True),
            cell(usd(c.monthly_margin_impact), numeric=True),
        ]
        for c in review.prompt_version_changes
    ]
    budgets = [
        [
            cell(f"{b.at:%Y-%m-%d %H:%M}"),
            cell(b.budget_name, url=admin_url(Budget, "change", b.budget_id)),
            cell(b.scope_label),
            cell(f"{b.from_state} → {b.to_state}"),
            cell(usd(b.spend), numeric=True),
            cell(usd(b.limit), numeric=True),
        ]
        for b in review.budget_changes
    ]
    actions = [
        [
            cell(a.customer_name or a.customer_external_id or "—"),
            cell(a.plan_code or "—"),
            cell(a.title, url=admin_url(RemediationItem, "change", a.remediation_id)),
            cell(a.kind.replace("_", " ")),
            cell(RemediationState(a.state).label, label=STATE_LABELS.get(a.state, "")),
            cell(usd(a.estimated_monthly_savings), numeric=True),
            cell(f"{a.last_change_at:%Y-%m-%d}"),
        ]
        for a in review.tenant_actions
    ]
    outliers = [
        [
            cell(f"{t.customer_name} ({t.customer_external_id})"),
            cell(t.plan_code or "—"),
            cell(usd(t.ai_cost), numeric=True),
            cell(usd(t.revenue), numeric=True),
            cell(usd(t.contribution_margin), numeric=True),
            cell(pct(t.cost_ratio) if t.cost_ratio is not None else "no revenue", numeric=True),
            cell(
                " and ".join(
                    w for w, on in (("underwater", t.underwater), ("plan tail", t.in_tail)) if on
                )
            ),  # fmt: skip
        ]
        for t in review.outliers_without_action
    ]
    more = review.outlier_count - len(review.outliers_without_action)
    return [
        {
            "key": "paths", "title": "Top negative-margin feature paths",
            "note": "Revenue of a path = its active users × the plan's revenue per active user.",
            "headers": ["#", "Feature", "Plan", "Cost", "Revenue", "Margin", "Margin %",
                        "Prompt versions"],
            "rows": paths, "empty": "No feature path lost money.",
        },
        {
            "key": "prompt-versions", "title": "Prompt-version changes with margin impact",
            "note": "Cost per request of a version first used this week against the feature's "
            "other versions over the four weeks before; impact if all traffic moves to it.",
            "headers": ["Feature", "New version", "Was", "First used", "Cost/request before",
                        "After", "Change", "Margin impact /mo"],
            "rows": changes, "empty": "No prompt version was introduced this week.",
        },
        {
            "key": "budgets", "title": "Budget threshold changes",
            "headers": ["When (UTC)", "Budget", "Scope", "State", "Spend", "Limit"],
            "rows": budgets, "empty": "No budget changed state.",
        },
        {
            "key": "tenant-actions", "title": "Pricing and quota actions for outlier tenants",
            "headers": ["Customer", "Plan", "Action", "Kind", "State", "Est. savings /mo",
                        "Last change"],
            "rows": actions, "empty": "No pricing, quota or contact action this week.",
        },
        {
            "key": "outliers", "title": "Outliers without an action yet",
            "note": f"{review.outlier_count} in all; the costliest are shown." if more > 0 else "",
            "headers": ["Customer", "Plan", "AI cost", "Revenue", "Margin", "Cost ratio", "Why"],
            "rows": outliers, "empty": "Every underwater or plan-tail tenant has an action.",
        },
    ]  # fmt: skip


def week_options(default: date) -> list[tuple[str, str]]:
    """The weeks offered: the current one (so far), then the last ``WEEKS_OFFERED`` complete."""
    weeks = [default + WEEK] + [default - WEEK * n for n in range(WEEKS_OFFERED)]
    options = []
    for index, start in enumerate(weeks):
        last = start + timedelta(days=6)
        suffix = " (this week, so far)" if index == 0 else ""
        options.append((start.isoformat(), f"{start:%Y-%m-%d} – {last:%Y-%m-%d}{suffix}"))
    return options


def week_parse(value: str | None, default: date) -> tuple[date, str | None]:
    """The Monday of the week ``value`` names (any day of it, ISO), or the default week."""
    if not value:
        return default, None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return default, f"“{value}” is not a date (YYYY-MM-DD): showing the last full week."
    return day - timedelta(days=day.weekday()), None


def weekly_review_page(request: HttpRequest) -> HttpResponse:
    """The weekly review of the active organization; ``?week=`` picks the week,
    ``?format=csv`` or ``?format=md`` downloads it."""
    organization = request.organization
    if organization is None or not request.user.has_perm(REVIEW_PERMISSION):
        raise PermissionDenied
    now = timezone.now()
    default = week_start_default(now)
    week, error = week_parse(request.GET.get("week"), default)
    review = weekly_review(organization=organization, week_start=week, now=now)
    export = EXPORTS.get(request.GET.get("format", ""))
    if export is not None and error is None:
        content_type, extension, render = export
        response = HttpResponse(render(review), content_type=content_type)
        filename = f"weekly-review-{organization.slug}-{review.week_start.isoformat()}.{extension}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    options = week_options(default)
    if week.isoformat() not in {value for value, _ in options}:
        last = week + timedelta(days=6)
        options.append((week.isoformat(), f"{week:%Y-%m-%d} – {last:%Y-%m-%d}"))
    context = {
        **admin.site.each_context(request),
        "title": "Weekly review",
        "organization": organization,
        "review": review,
        "week": week.isoformat(),
        "week_last_day": review.week_end - timedelta(days=1),
        "week_options": options,
        "error": error,
        "sections": sections(review),
        "csv_url": review_url(week, "csv"),
        "markdown_url": review_url(week, "md"),
        "findings_url": admin_url(Finding, "changelist"),
    }
    return TemplateResponse(
        request, "admin/findings/review.html", context, status=400 if error else 200
    )


def sidebar_items(request: HttpRequest) -> list[dict]:
    """The findings workflow's sidebar links the user may open (none outside an organization)."""
    if getattr(request, "organization", None) is None:
        return []
    user, here = request.user, request.path
    triage, review = admin_url(Finding, "changelist"), review_url()
    approvals = admin_url(RemediationItem, "changelist")
    items = []
    # Active states are explicit: the review's URL sits under the findings' own.
    if user.has_perm("findings.view_finding"):
        items.append({
            "title": "Findings triage", "icon": "troubleshoot", "link": triage,
            "active": here.startswith(triage) and not here.startswith(review),
        })  # fmt: skip
    if user.has_perm("findings.view_remediationitem"):
        items.append({
            "title": "Awaiting approval", "icon": "approval",
            "link": f"{approvals}?state__exact=pending_approval",
            "active": here.startswith(approvals),
        })  # fmt: skip
    if user.has_perm(REVIEW_PERMISSION):
        items.append({"title": "Weekly review", "icon": "summarize", "link": review,
                      "active": here.startswith(review)})  # fmt: skip
    return items
