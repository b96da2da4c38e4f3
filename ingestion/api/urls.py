from rest_framework.routers import SimpleRouter

from ingestion.api import views
from ingestion.api.reconciliation import ReconciliationLineViewSet
from ingestion.api.revenue import RevenueLineViewSet

router = SimpleRouter()
router.register("events", views.UsageEventViewSet, basename="usage-event")
router.register("usage/daily", views.DailyUsageViewSet, basename="daily-usage")
router.register("reconciliation", ReconciliationLineViewSet, basename="reconciliation")
router.register("revenue", RevenueLineViewSet, basename="revenue-line")

urlpatterns = router.urls
