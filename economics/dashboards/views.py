"""The economics dashboards: thin admin views. Selectors read the snapshot, ``pages`` and
``charts`` shape it, templates draw it; ``?format=csv`` exports any table exactly."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from economics import selectors
from economics.calculations import BANDS
from economics.dashboards import charts, pages
from economics.dashboards.tables import BAND_LABELS, Column, Table, csv_filename
from economics.formatting import percent
from economics.models import EconomicsSnapshot

SNAPSHOT_VIEW = "economics.view_economicssnapshot"
CUSTOMER_VIEW = "economics.view_customereconomics"
CUSTOMERS_PER_PAGE = 50
TABS = (
    ("overview", "Overview"),
    ("customers", "Customers"),
    ("features", "Features"),
    ("plans", "Plans"),
    ("models", "Models"),
    ("segments", "Segments"),
    ("cohorts", "Cohorts"),
)

View = Callable[..., HttpResponse]


def dashboard(page: str, *, permission: str = SNAPSHOT_VIEW) -> Callable[[View], View]:
    """Resolve the organization, permission and snapshot of ``?period=`` for a dashboard
    view, which is called as ``view(request, snapshot, context, *args)``; without a snapshot
    the page explains how to compute one."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            organization = request.organization
            context = {
                **admin.site.each_context(request),
                "title": "Economics",
                "page": page,
                "organization": organization,
            }
            if organization is None:
                return _render(request, context, message="no_organization")
            if not request.user.has_perm(permission):
                raise PermissionDenied
            periods = selectors.snapshot_periods(organization=organization)
            if not periods:
                return _render(request, context, message="no_snapshot")
            period = request.GET.get("period") or ""
            context["period_options"] = pages.period_options(periods)
            try:
                snapshot = selectors.snapshot_for_period(organization=organization, period=period)
            except selectors.PeriodError as error:
                context["error"] = str(error)
                return _render(request, context, message="no_period", status=400)
            if snapshot is None:
                context["error"] = f"No figures have been computed for {period}."
                return _render(request, context, message="no_period", status=404)
            value = pages.period_value(snapshot.kind, snapshot.period_start)
            label = pages.period_label(snapshot.kind, snapshot.period_start, snapshot.period_end)
            context.update(
                {
                    "title": f"Economics · {label}",
                    "snapshot": snapshot,
                    "period": value,
                    "period_label": label,
                    "tabs": [
                        (key, title, pages.dashboard_url(key, snapshot)) for key, title in TABS
                    ],
                    "filters": [],
                }
            )
            return view(request, snapshot, context, *args, **kwargs)

        return wrapper

    return decorator


def _render(request, context, *, message: str, status: int = 200) -> HttpResponse:
    context["message"] = message
    return TemplateResponse(request, "admin/economics/dashboard/empty.html", context, status=status)


def _wants_csv(request: HttpRequest) -> bool:
    return request.GET.get("format") == "csv"


def _csv_url(request: HttpRequest, **extra) -> str:
    query = {key: value for key, value in request.GET.items() if key != "page"}
    return f"{request.path}?{urlencode({**query, **extra, 'format': 'csv'})}"


def _section(table: Table, *, key: str, title: str, csv_url: str, note: str = "", **extra):
    return {
        "key": key, "title": title, "note": note, "csv_url": csv_url,
        "headers": [{"label": c.label, "numeric": c.numeric} for c in table.screen_columns],
        "rows": table.screen_rows(), **extra,
    }  # fmt: skip


def _filter(name: str, label: str, options: Sequence[tuple[str, str]], value: str) -> dict:
    return {"name": name, "label": label, "options": options, "value": value}


# --- overview -----------------------------------------------------------------------------

UNDERWATER_COLUMNS = (
    Column("name", "Customer"),
    Column("plan_name", "Plan"),
    Column("ai_cost", "AI cost", "money"),
    Column("revenue", "Revenue", "money"),
    Column("cost_ratio", "AI cost ratio", "percent"),
    Column("band", "Band", "band"),
)


@dashboard("overview")
def overview(request, snapshot: EconomicsSnapshot, context: dict) -> HttpResponse:
    """Figures and charts of one period."""
    underwater = list(selectors.customer_economics_underwater(snapshot=snapshot))
    coverage = snapshot.summary.get("coverage") or {}
    plans = [
        {"plan": plan, "chart": chart, "id": f"chart-plan-{index}", "stats": pages.plan_stats(plan)}
        for index, plan in enumerate(snapshot.plans)
        if (chart := charts.plan_distribution_chart(plan)) is not None
    ]
    context.update(
        {
            "figures": pages.overview_figures(snapshot),
            "feature_coverage": f"{percent(coverage.get('feature'))} of AI cost is attributed "
            "to a feature.",
            "plan_coverage": f"{percent(coverage.get('plan'))} of AI cost is attributed to a plan.",
            "ledger_lines": pages.ledger_lines(snapshot.summary),
            "trend_chart": charts.margin_trend_chart(snapshot),
            "granularity": snapshot.summary.get("granularity", "day"),
            "feature_chart": charts.feature_cost_chart(snapshot),
            "plan_charts": plans,
            "underwater_chart": charts.underwater_chart(underwater),
            "underwater": _section(
                Table(UNDERWATER_COLUMNS, pages.customer_rows(underwater, snapshot)),
                key="underwater",
                title="Top underwater accounts",
                csv_url=pages.dashboard_url("customers", snapshot, underwater="yes", format="csv"),
            ),  # fmt: skip
            "underwater_link": pages.dashboard_url("customers", snapshot, underwater="yes"),
        }
    )
    return TemplateResponse(request, "admin/economics/dashboard/overview.html", context)


# --- customers ----------------------------------------------------------------------------

UNDERWATER_CHOICES = {"yes": True, "no": False}


@dashboard("customers", permission=CUSTOMER_VIEW)
def customers(request, snapshot: EconomicsSnapshot, context: dict) -> HttpResponse:
    """Every customer of the period, filtered and sorted; paged on screen, whole in CSV."""
    band = request.GET.get("band") or ""
    plan = request.GET.get("plan") or ""
    underwater = request.GET.get("underwater") or ""
    search = (request.GET.get("q") or "").strip()
    order = request.GET.get("o") or "-cost_ratio"
    rows = selectors.customer_economics_search(
        snapshot=snapshot, band=band or None, plan=plan or None,
        underwater=UNDERWATER_CHOICES.get(underwater), search=search or None, order=order,
    )  # fmt: skip
    if _wants_csv(request):
        table = Table(pages.CUSTOMER_COLUMNS, pages.customer_rows(rows.iterator(), snapshot))
        return table.csv_response(csv_filename("customers", pages.period_slug(snapshot)))

    page = Paginator(rows, CUSTOMERS_PER_PAGE).get_page(request.GET.get("page"))
    table = Table(pages.CUSTOMER_COLUMNS, pages.customer_rows(page.object_list, snapshot))
    section = _section(
        table, key="customers", title=f"{page.paginator.count:,} customers",
        csv_url=_csv_url(request),
    )  # fmt: skip
    section["headers"] = _sort_headers(request, table.screen_columns, order)
    plan_options = [("", "All plans")] + [
        (item.get("plan"), item.get("name") or item.get("plan")) for item in snapshot.plans
    ]
    context["filters"] = [
        _filter("band", "Band", [("", "All bands")] + [(b, BAND_LABELS[b][0]) for b in BANDS],
                band),
        _filter("plan", "Plan", [*plan_options, (selectors.NO_PLAN, "No plan")], plan),
        _filter("underwater", "Underwater", [("", "Any"), ("yes", "Underwater"),
                                             ("no", "Not underwater")], underwater),
    ]  # fmt: skip
    context.update(
        {"search": search, "order": order, "sections": [section], "page_obj": page,
         "page_links": _page_links(request, page)}
    )  # fmt: skip
    return TemplateResponse(request, "admin/economics/dashboard/tables.html", context)


def _sort_headers(request, columns: Sequence[Column], order: str) -> list[dict]:
    """Headers whose sortable columns link to their order: figures largest first, names
    A to Z; a second click on the sorted column reverses it."""
    current, descending = order.lstrip("-"), order.startswith("-")
    query = {key: value for key, value in request.GET.items() if key not in ("o", "page")}
    headers = []
    for column in columns:
        header = {"label": column.label, "numeric": column.numeric}
        if column.sort:
            if column.sort == current:
                next_descending = not descending
                header["sorted"] = "desc" if descending else "asc"
            else:
                next_descending = column.numeric
            sort = f"-{column.sort}" if next_descending else column.sort
            header["href"] = "?" + urlencode({**query, "o": sort})
        headers.append(header)
    return headers


def _page_links(request, page) -> dict:
    query = {key: value for key, value in request.GET.items() if key != "page"}

    def link(number):
        return "?" + urlencode({**query, "page": number})

    return {
        "previous": link(page.previous_page_number()) if page.has_previous() else None,
        "next": link(page.next_page_number()) if page.has_next() else None,
    }


@dashboard("customers", permission=CUSTOMER_VIEW)
def customer(request, snapshot: EconomicsSnapshot, context: dict, customer_id: int):
    """One customer in the period: figures, change vs the previous period, cost by feature."""
    row = selectors.customer_economics_get(snapshot=snapshot, customer_id=customer_id)
    if row is None:
        context["error"] = f"This customer has no figures in {context['period_label']}."
        return _render(request, context, message="no_period", status=404)
    table = Table(pages.CUSTOMER_FEATURE_COLUMNS, pages.customer_feature_rows(row, snapshot))
    if _wants_csv(request):
        return table.csv_response(
            csv_filename("customer", pages.period_slug(snapshot), row.customer.external_id)
        )
    previous = selectors.customer_economics_previous(row=row)
    name = row.customer.name or row.customer.external_id
    context.update(
        {
            "title": f"{name} · {context['period_label']}",
            "row": row,
            "figures": pages.customer_figures(row),
            "badges": Table(pages.CUSTOMER_BADGE_COLUMNS, [pages.customer_row(row, snapshot)])
            .screen_rows()[0],
            "changes": pages.customer_changes(row, previous),
            "previous": previous,
            "previous_url": (
                pages.dashboard_url("customer", previous.snapshot, row.customer_id)
                if previous else None
            ),
            "sections": [
                _section(table, key="features", title="AI cost by feature",
                         csv_url=_csv_url(request),
                         note="Each feature links to its billable events of the period.")
            ],
            "events_url": pages.events_url(snapshot, customer_id=row.customer_id),
            "customer_admin_url": reverse("admin:accounts_customer_change",
                                          args=[row.customer_id]),
            "plan_url": pages.dashboard_url("customers", snapshot,
                                            plan=row.plan.code if row.plan else selectors.NO_PLAN),
        }
    )  # fmt: skip
    return TemplateResponse(request, "admin/economics/dashboard/customer.html", context)


# --- features, plans, models, segments, cohorts -------------------------------------------


@dashboard("features")
def features(request, snapshot: EconomicsSnapshot, context: dict) -> HttpResponse:
    """Feature economics by plan tier, and cost by prompt version."""
    plan = request.GET.get("plan") or pages.ALL_PLANS
    table = Table(pages.FEATURE_COLUMNS, pages.feature_rows(snapshot, plan))
    versions = Table(pages.PROMPT_VERSION_COLUMNS, pages.prompt_version_rows(snapshot))
    if _wants_csv(request):
        if request.GET.get("table") == "prompt_versions":
            return versions.csv_response(
                csv_filename("prompt-versions", pages.period_slug(snapshot))
            )
        return table.csv_response(csv_filename("features", pages.period_slug(snapshot), plan))
    context["filters"] = [
        _filter(
            "plan", "Plan",
            [(pages.ALL_PLANS, "All plans together"), (pages.EVERY_PLAN, "Each plan apart")]
            + [(p.get("plan"), p.get("name") or p.get("plan")) for p in snapshot.plans],
            plan,
        )
    ]  # fmt: skip
    coverage = percent((snapshot.summary.get("coverage") or {}).get("feature"))
    trend = charts.feature_trend_chart(snapshot)
    granularity = (snapshot.feature_trend or {}).get("granularity", "day")
    context["charts"] = [
        {"id": "chart-feature-trend", "chart": trend,
         "title": f"AI cost of the costliest features (USD, per {granularity})"}
    ] if trend else []  # fmt: skip
    context["sections"] = [
        _section(table, key="features", title="Features", csv_url=_csv_url(request),
                 note=f"{coverage} of AI cost is attributed to a feature. Health is the cost "
                 "per active user ÷ the plan's revenue per active user, in the customer bands."),
        _section(versions, key="prompt-versions", title="Cost by prompt version",
                 csv_url=_csv_url(request, table="prompt_versions")),
    ]  # fmt: skip
    return TemplateResponse(request, "admin/economics/dashboard/tables.html", context)


@dashboard("plans")
def plans(request, snapshot: EconomicsSnapshot, context: dict) -> HttpResponse:
    """Plan unit economics, the spread of per-account cost and the tail."""
    table = Table(pages.PLAN_COLUMNS, pages.plan_rows(snapshot))
    if _wants_csv(request):
        return table.csv_response(csv_filename("plans", pages.period_slug(snapshot)))
    tail = snapshot.policy.get("tail_ratio") or snapshot.policy.get("underwater_threshold")
    context["sections"] = [
        _section(table, key="plans", title="Plans", csv_url=_csv_url(request),
                 note=f"The tail: accounts whose AI cost is at least {percent(tail)} of "
                 "the plan price. Open a plan to see its customers.")
    ]  # fmt: skip
    return TemplateResponse(request, "admin/economics/dashboard/tables.html", context)


@dashboard("models")
def models(request, snapshot: EconomicsSnapshot, context: dict) -> HttpResponse:
    """Margin by provider model; revenue is allocated by each customer's AI-cost share."""
    table = Table(pages.MODEL_COLUMNS, pages.model_rows(snapshot))
    if _wants_csv(request):
        return table.csv_response(csv_filename("models", pages.period_slug(snapshot)))
    context["sections"] = [
        _section(table, key="models", title="Models", csv_url=_csv_url(request),
                 note="Revenue is allocated to models by each customer's share of AI cost "
                 "on them. Open a model to see its billable events of the period.")
    ]  # fmt: skip
    return TemplateResponse(request, "admin/economics/dashboard/tables.html", context)


@dashboard("segments")
def segments(request, snapshot: EconomicsSnapshot, context: dict) -> HttpResponse:
    """Margin by region, segment, plan tier or a metadata key."""
    dimensions = pages.segment_dimensions(snapshot)
    dimension = request.GET.get("dimension") or (dimensions[0] if dimensions else "")
    table = Table(pages.SEGMENT_COLUMNS, pages.segment_rows(snapshot, dimension))
    if _wants_csv(request):
        return table.csv_response(csv_filename("segments", pages.period_slug(snapshot), dimension))
    context["filters"] = [
        _filter("dimension", "By", [(d, pages.dimension_label(d)) for d in dimensions], dimension)
    ]
    context["sections"] = [
        _section(table, key="segments", title=pages.dimension_label(dimension) if dimension
                 else "Segments", csv_url=_csv_url(request),
                 note=(snapshot.segments or {}).get("revenue_allocation", ""))
    ]  # fmt: skip
    return TemplateResponse(request, "admin/economics/dashboard/tables.html", context)


@dashboard("cohorts")
def cohorts(request, snapshot: EconomicsSnapshot, context: dict) -> HttpResponse:
    """Margin % by customer start month and month of life (margin $ beneath)."""
    if _wants_csv(request):
        table = Table(pages.COHORT_CSV_COLUMNS, pages.cohort_long_rows(snapshot))
        return table.csv_response(csv_filename("cohorts", pages.period_slug(snapshot)))
    columns, rows = pages.cohort_grid(snapshot)
    context["sections"] = [
        _section(Table(columns, rows), key="cohorts", title="Cohorts", csv_url=_csv_url(request),
                 note="Contribution margin % of each start-month cohort in its 1st, 2nd, … "
                 "month; the CSV has one row per cohort and month with the amounts.")
    ]  # fmt: skip
    return TemplateResponse(request, "admin/economics/dashboard/tables.html", context)


# --- navigation ---------------------------------------------------------------------------


def sidebar_items(request: HttpRequest) -> list[dict]:
    """The dashboards' sidebar links the user may open (none outside an organization)."""
    if getattr(request, "organization", None) is None:
        return []
    user = request.user
    items = []
    if user.has_perm(SNAPSHOT_VIEW):
        icons = {"overview": "monitoring", "customers": "group", "features": "widgets",
                 "plans": "sell", "models": "memory", "segments": "pie_chart",
                 "cohorts": "calendar_month"}  # fmt: skip
        for key, title in TABS:
            if key == "customers" and not user.has_perm(CUSTOMER_VIEW):
                continue
            items.append({"title": title, "icon": icons[key], "link": reverse(f"economics-{key}")})
    if user.has_perm("economics.view_economicspolicy"):
        items.append(
            {
                "title": "Policy",
                "icon": "tune",
                "link": reverse("admin:economics_economicspolicy_changelist"),
            }
        )
    return items
