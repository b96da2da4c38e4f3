"""The project's URLs plus the reconciliation route (until ingestion/api/urls.py has it)."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from ingestion.api.reconciliation import ReconciliationLineViewSet
from metron.urls import handler404, handler500  # noqa: F401 - the same JSON error pages
from metron.urls import urlpatterns as project_urlpatterns

router = SimpleRouter()
router.register("reconciliation", ReconciliationLineViewSet, basename="reconciliation")

urlpatterns = [path("api/v1/", include(router.urls)), *project_urlpatterns]
