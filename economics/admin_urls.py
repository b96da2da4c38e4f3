"""The economics dashboards, served under /admin/economics/ beside the model admins."""

from django.contrib import admin
from django.urls import path

from economics.dashboards import views

urlpatterns = [
    path(f"{page}/", admin.site.admin_view(getattr(views, page)), name=f"economics-{page}")
    for page in ("overview", "customers", "features", "plans", "models", "segments", "cohorts")
] + [
    path(
        "customers/<int:customer_id>/",
        admin.site.admin_view(views.customer),
        name="economics-customer",
    ),
]
