"""Callbacks the admin theme calls: organization switcher, badge and the ops start page."""

from __future__ import annotations

import json
from datetime import timedelta

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from accounts.models import Customer, Feature, ProviderKey
from accounts.selectors import (
    catalog_summary,
    customer_list,
    feature_list,
    plan_customer_counts,
    provider_key_list,
)
from economics.dashboards.pages import dashboard_url, overview_figures, period_label
from economics.dashboards.views import sidebar_items
from economics.selectors import snapshot_for_period
from findings.admin.review import sidebar_items as findings_sidebar_items
from ingestion.models import EventConflict, UnreviewedCustomer, UsageEvent
from ingestion.selectors import daily_cost_series, unpriced_model_list, usage_summary
from metron.money import quantize_money

REVIEW_ROWS = 8


def site_dropdown(request):
    return [
        {
            "icon": "swap_horiz",
            "title": "Switch organization",
            "link": reverse("organization-switch"),
        },
        {"icon": "api", "title": "API documentation", "link": reverse("api-docs")},
    ]


def environment_badge(request):
    """The active organization, shown in the header on every admin page."""
    organization = getattr(request, "organization", None)
    if organization is None:
        return None
    return [organization.name, "info"]


def sidebar_navigation(request):
    """The sidebar: the economics dashboards, then every application as the admin lists it."""
    groups = []
    dashboards = sidebar_items(request)
    if dashboards:
        groups.append({"title": "Economics dashboards", "items": dashboards})
    findings_items = findings_sidebar_items(request)
    if findings_items:
        groups.append({"title": "Findings and review", "items": findings_items})
    for app in admin.site.get_app_list(request):
        models = [m for m in app["models"] if m.get("admin_url")]
        groups.append(
            {"title": app["name"], "items": [{"title": m["name"], "link": m["admin_url"]}
                                            for m in models]}
        )  # fmt: skip
    return groups


def _economics(request) -> dict | None:
    """The latest month's headline figures for the start page (None without permission)."""
    if not request.user.has_perm("economics.view_economicssnapshot"):
        return None
    snapshot = snapshot_for_period(organization=request.organization, period=None)
    if snapshot is None:
        return {"title": "Economics", "link": reverse("economics-overview"), "figures": []}
    keep = {"revenue", "contribution-margin", "contribution-margin-pct", "underwater"}
    label = period_label(snapshot.kind, snapshot.period_start, snapshot.period_end)
    return {
        "title": f"Economics · {label}",
        "link": dashboard_url("overview", snapshot),
        "stale": snapshot.is_stale,
        "figures": [f for f in overview_figures(snapshot) if f.key in keep],
    }


def _changelist(model, **params) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    if params:
        url += "?" + "&".join(f"{key}={value}" for key, value in params.items())
    return url


def dashboard_callback(request, context):
    """The admin index: the active organization's catalog at a glance and its review queue."""
    organization = request.organization
    if organization is None:
        return context
    summary = catalog_summary(organization=organization)
    plans = list(plan_customer_counts(organization=organization, at=timezone.now()))
    since = timezone.now().date() - timedelta(days=29)
    usage = usage_summary(organization=organization, since=since)
    series = daily_cost_series(organization=organization, since=since)
    context.update(
        {
            "title": f"{organization.name} · catalog at a glance",
            "organization": organization,
            "economics": _economics(request),
            "summary": summary,
            "kpis": [
                {
                    "title": "Customers",
                    "value": summary.customers,
                    "footer": f"{summary.customers_internal} internal / test",
                    "link": _changelist(Customer),
                },
                {
                    "title": "Active features",
                    "value": summary.features_active,
                    "footer": f"{summary.features_retired} retired",
                    "link": _changelist(Feature, status="active"),
                },
                {
                    "title": "Provider keys",
                    "value": summary.provider_keys,
                    "footer": f"{summary.provider_keys_unmapped} unmapped",
                    "link": _changelist(ProviderKey),
                },
                {
                    "title": "Waiting for review",
                    "value": summary.customers_to_review
                    + summary.features_to_review
                    + summary.provider_keys_unmapped,
                    "footer": "customers, features and unmapped keys",
                    "link": _changelist(UnreviewedCustomer),
                },
            ],
            "usage": usage,
            "usage_kpis": [
                {
                    "title": "Requests, last 30 days",
                    "value": f"{usage.requests:,}",
                    "footer": "all environments",
                    "link": _changelist(UsageEvent),
                },
                {
                    "title": "AI cost, last 30 days",
                    "value": f"${usage.cost:,.2f}",
                    "footer": "priced events; unpriced shown apart",
                    "link": _changelist(UsageEvent),
                },
                {
                    "title": "Unpriced events",
                    "value": f"{usage.unpriced_requests:,}",
                    "footer": "never counted as $0: add a price override",
                    "link": _changelist(UsageEvent, cost_status__exact="unpriced"),
                },
                {
                    "title": "Open conflicts",
                    "value": usage.open_conflicts,
                    "footer": "event ids resent with another payload",
                    "link": _changelist(EventConflict, resolved__exact=0),
                },
            ],
            "cost_chart": json.dumps(
                {
                    "labels": [day.isoformat() for day, _ in series],
                    "datasets": [
                        {
                            "label": "AI cost (USD)",
                            # Strings: Chart.js reads numeric strings, money never becomes float.
                            "data": [str(quantize_money(cost)) for _, cost in series],
                            "backgroundColor": "var(--color-primary-600)",
                            "maxBarThickness": 24,
                        }
                    ],
                }
            ),
            "unpriced_models": list(unpriced_model_list(organization=organization)[:REVIEW_ROWS]),
            "plans_table": {
                "headers": ["Plan", "Price", "Customers today"],
                "rows": [
                    [p.name, f"{p.price:,.2f} {p.currency} / {p.interval}", p.customer_count]
                    for p in plans
                ],
            },
            "plans_chart": json.dumps(
                {
                    "labels": [p.name for p in plans],
                    "datasets": [
                        {
                            "label": "Customers today",
                            "data": [p.customer_count for p in plans],
                            "backgroundColor": "var(--color-primary-600)",
                            "maxBarThickness": 64,
                        }
                    ],
                }
            ),
            "review_customers": customer_list(organization=organization).filter(needs_review=True)[
                :REVIEW_ROWS
            ],
            "review_features": feature_list(organization=organization).filter(needs_review=True)[
                :REVIEW_ROWS
            ],
            "unmapped_keys": provider_key_list(organization=organization).filter(
                feature__isnull=True
            )[:REVIEW_ROWS],
            "links": {
                "customers_review": _changelist(UnreviewedCustomer),
                "unpriced": _changelist(UsageEvent, cost_status__exact="unpriced"),
                "features_review": _changelist(Feature, needs_review__exact=1),
                "keys_unmapped": _changelist(ProviderKey, mapped="no"),
            },
        }
    )
    return context
