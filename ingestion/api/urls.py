from rest_framework.routers import SimpleRouter

from ingestion.api import views

router = SimpleRouter()
router.register("events", views.UsageEventViewSet, basename="usage-event")
router.register("usage/daily", views.DailyUsageViewSet, basename="daily-usage")

urlpatterns = router.urls
