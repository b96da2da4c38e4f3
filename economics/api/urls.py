from rest_framework.routers import SimpleRouter

from economics.api import views

router = SimpleRouter()
router.register(
    "economics/customers", views.CustomerEconomicsViewSet, basename="economics-customer"
)
router.register("economics/features", views.FeatureEconomicsViewSet, basename="economics-feature")
router.register("economics/plans", views.PlanEconomicsViewSet, basename="economics-plan")
router.register("economics/models", views.ModelMarginViewSet, basename="economics-model")
router.register("economics/segments", views.SegmentEconomicsViewSet, basename="economics-segment")
router.register("economics/cohorts", views.CohortEconomicsViewSet, basename="economics-cohort")
router.register("economics/trend", views.TrendViewSet, basename="economics-trend")
router.register("economics/summary", views.SummaryViewSet, basename="economics-summary")

urlpatterns = router.urls
