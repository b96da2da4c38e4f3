from rest_framework.routers import SimpleRouter

from accounts.api import views

router = SimpleRouter()
router.register("customers", views.CustomerViewSet, basename="customer")
router.register("plans", views.PlanViewSet, basename="plan")
router.register("features", views.FeatureViewSet, basename="feature")
router.register("provider-keys", views.ProviderKeyViewSet, basename="provider-key")

urlpatterns = router.urls
