from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts.middleware import ACTIVE_ORGANIZATION_SESSION_KEY
from accounts.selectors import organization_list_for_user


@require_http_methods(["GET", "POST"])
def organization_switch(request):
    """Choose the organization the admin works in (only among the user's own)."""
    organizations = organization_list_for_user(user=request.user).order_by("name")
    if request.method == "POST":
        chosen = organizations.filter(pk=request.POST.get("organization")).first()
        if chosen is None:
            messages.error(request, "You are not a member of that organization.")
        else:
            request.session[ACTIVE_ORGANIZATION_SESSION_KEY] = chosen.pk
            messages.success(request, f"Now working in {chosen.name}.")
            next_url = request.POST.get("next") or ""
            if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
                return HttpResponseRedirect(next_url)
            return HttpResponseRedirect(reverse("admin:index"))
    context = {
        **admin.site.each_context(request),
        "title": "Switch organization",
        "organizations": organizations,
        "next": reverse("admin:index"),
    }
    return TemplateResponse(request, "accounts/organization_switch.html", context)
