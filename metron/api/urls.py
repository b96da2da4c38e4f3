"""Every app's API routes under /api/v1/."""

from django.urls import include, path

urlpatterns = [
    path("", include("accounts.api.urls")),
    path("", include("ingestion.api.urls")),
    path("", include("economics.api.urls")),
    path("", include("findings.api.urls")),
]
