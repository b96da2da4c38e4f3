"""Callbacks the admin theme calls: organization switcher, badge and dashboard."""

from __future__ import annotations


def site_dropdown(request):
    return []


def environment_badge(request):
    organization = getattr(request, "organization", None)
    if organization is None:
        return None
    return [organization.name, "info"]


def dashboard_callback(request, context):
    return context
