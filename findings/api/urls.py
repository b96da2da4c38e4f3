from rest_framework.routers import SimpleRouter

from findings.api import views

router = SimpleRouter()
# Before "findings": its detail routes take digits only, but keep the literal path first.
router.register(
    "findings/weekly-review", views.WeeklyReviewViewSet, basename="finding-weekly-review"
)
router.register("findings", views.FindingViewSet, basename="finding")
router.register("remediations", views.RemediationViewSet, basename="remediation")
router.register("budgets", views.BudgetViewSet, basename="budget")

urlpatterns = router.urls
