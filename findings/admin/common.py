"""Shared by the findings admin screens: labels, money, evidence tables and charts,
and how a service's refusal reaches the person who clicked."""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.http import HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import reverse

from findings.models import (
    ALERT_KINDS,
    FindingConfidence,
    FindingStatus,
    RemediationState,
)
from metron.money import quantize_money
from metron.tenancy.admin import OrganizationScopedTabularInline

DASH = "—"
AUDIT_FIELDS = ("created_at", "updated_at")
MEDIA_CSS = {"all": ("findings/admin.css",)}

STATUS_LABELS = {
    FindingStatus.OPEN: "danger",
    FindingStatus.ACKNOWLEDGED: "warning",
    FindingStatus.IN_PROGRESS: "info",
    FindingStatus.RESOLVED: "success",
    FindingStatus.DISMISSED: "",
    FindingStatus.SNOOZED: "",
}
CONFIDENCE_LABELS = {
    FindingConfidence.HIGH: "success",
    FindingConfidence.MEDIUM: "warning",
    FindingConfidence.LOW: "",
}
STATE_LABELS = {
    RemediationState.DRAFT: "",
    RemediationState.PENDING_APPROVAL: "warning",
    RemediationState.APPROVED: "info",
    RemediationState.REJECTED: "danger",
    RemediationState.IMPLEMENTED: "primary",
    RemediationState.VERIFIED: "success",
    RemediationState.CANCELLED: "",
}


def usd(value: Decimal | str | None) -> str:
    """USD for people: ``$1,234.50``, ``-$12.00``; a dash when unknown."""
    if value is None or value == "":
        return DASH
    try:
        amount = quantize_money(value if isinstance(value, Decimal) else Decimal(str(value)))
    except InvalidOperation:
        return str(value)
    text = f"${abs(amount):,}"
    return f"-{text}" if amount < 0 else text


def category(kind: str) -> str:
    return "alert" if kind in ALERT_KINDS else "waste"


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def post_only(request):
    """A 405 answer for anything but POST (state changes never ride on a GET)."""
    return None if request.method == "POST" else HttpResponseNotAllowed(["POST"])


def report(
    model_admin,
    request,
    *,
    done: Iterable[str],
    failed: Iterable[tuple[str, str]],
    verb: str,
    noun: str,
    plural: str | None = None,
) -> None:
    """One success line for what went through, one error line per refusal (its reason)."""
    done, failed = list(done), list(failed)
    plural = plural or f"{noun}s"
    if done:
        model_admin.message_user(
            request, f"{verb} {len(done)} {noun if len(done) == 1 else plural}.", messages.SUCCESS
        )
    for name, error in failed:
        model_admin.message_user(request, f"“{name}”: {error}", messages.ERROR)
    if not done and not failed:
        model_admin.message_user(
            request, f"No {plural} of this organization were selected.", messages.WARNING
        )


def action_with_form(
    model_admin, request, queryset, *, noun, action, form_class, title, intro, submit, apply,
    plural=None, **form_kwargs,
):  # fmt: skip
    """An admin action that first asks for input (a reason, a date, an owner) on a page of
    its own, then calls ``apply(objects, cleaned_data)``."""
    objects = list(queryset)
    if not objects:
        report(model_admin, request, done=[], failed=[], verb="", noun=noun, plural=plural)
        return None
    form = form_class(request.POST if "apply" in request.POST else None, **form_kwargs)
    if form.is_bound and form.is_valid():
        apply(objects, form.cleaned_data)
        return None
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "objects": objects,
        "form": form,
        "action": action,
        "submit": submit,
        "opts": model_admin.opts,
        "media": model_admin.media + form.media,
    }
    return TemplateResponse(request, "admin/findings/action_form.html", context)


class ReadOnlyInline(OrganizationScopedTabularInline):
    """An append-only log under its parent: shown, never added to, changed or deleted."""

    can_delete = False
    max_num = 0
    hide_title = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def transition_text(from_state: str, to_state: str) -> str:
    if from_state == to_state:
        return to_state or DASH
    return f"{from_state or '∅'} → {to_state}"


def amounts_text(amounts: dict | None) -> str:
    amounts = amounts or {}
    parts = [f"estimated {usd(amounts.get('estimated_monthly_savings'))}/mo"]
    if amounts.get("realized_monthly_savings") not in (None, ""):
        parts.append(f"realized {usd(amounts['realized_monthly_savings'])}/mo")
    return ", ".join(parts)


# --- evidence ------------------------------------------------------------------------------

EVIDENCE_SKIP = ("formula", "series")


def _label(path: tuple[str, ...]) -> str:
    return " › ".join(part.replace("_", " ") for part in path)


def evidence_rows(evidence: dict | None) -> list[tuple[str, str]]:
    """The evidence's inputs as (name, value) rows: nested objects flattened into
    ``a › b`` names, lists of plain values joined; the formula and series are shown apart."""
    rows: list[tuple[str, str]] = []

    def walk(path: tuple[str, ...], value) -> None:
        if isinstance(value, dict):
            if not value:
                rows.append((_label(path), DASH))
            for key, item in value.items():
                walk((*path, str(key)), item)
        elif isinstance(value, list | tuple):
            if all(not isinstance(item, dict | list | tuple) for item in value):
                rows.append((_label(path), ", ".join(str(item) for item in value) or DASH))
            else:
                for index, item in enumerate(value, 1):
                    walk((*path[:-1], f"{path[-1]} {index}") if path else (str(index),), item)
        elif value is None or value == "":
            rows.append((_label(path), DASH))
        else:
            rows.append((_label(path), str(value)))

    for key, value in (evidence or {}).items():
        if key not in EVIDENCE_SKIP:
            walk((str(key),), value)
    return rows


def evidence_series(evidence: dict | None) -> list[dict]:
    """The evidence's daily cost points (``{"day", "cost"}``), as the detector stored them."""
    series = (evidence or {}).get("series")
    if not isinstance(series, list):
        return []
    return [p for p in series if isinstance(p, dict) and "day" in p and "cost" in p]


def series_chart(evidence: dict | None) -> str | None:
    """Chart.js data (JSON) of the evidence's daily cost; costs stay the stored decimal
    strings, so the chart draws exactly the evidence's numbers. None without a series."""
    points = evidence_series(evidence)
    if not points:
        return None
    return json.dumps(
        {
            "labels": [str(point["day"]) for point in points],
            "datasets": [
                {
                    "label": "Daily cost (USD)",
                    "data": [str(point["cost"]) for point in points],
                    "backgroundColor": "var(--color-primary-600)",
                    "maxBarThickness": 18,
                    "displayYAxis": True,
                    "suffixYAxis": "USD",
                    "maxTicksXLimit": 10,
                }
            ],
        }
    )


def evidence_context(evidence: dict | None) -> dict:
    """What the evidence template shows: formula, inputs table, chart and series total."""
    points = evidence_series(evidence)
    total = Decimal(0)
    for point in points:
        try:
            total += Decimal(str(point["cost"]))
        except InvalidOperation:
            continue
    formula = (evidence or {}).get("formula")
    return {
        "formula": formula if isinstance(formula, str) else "",
        "rows": evidence_rows(evidence),
        "chart": series_chart(evidence),
        "series_days": len(points),
        "series_total": usd(total) if points else DASH,
    }
