from django.contrib import admin
from django.urls import include, path
from django.views import defaults
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from ingestion.webhooks import stripe_webhook
from metron.api import exceptions as api_exceptions

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", include("accounts.admin_urls")),
    path("admin/economics/", include("economics.admin_urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("metron.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("webhooks/stripe/<slug:org_slug>/", stripe_webhook, name="stripe-webhook"),
]


def handler404(request, exception):
    if request.path.startswith("/api/"):
        return api_exceptions.json_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/api/"):
        return api_exceptions.json_server_error(request)
    return defaults.server_error(request)
