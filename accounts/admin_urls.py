"""Extra admin pages of the accounts app, served under /admin/."""

from django.contrib import admin
from django.urls import path

from accounts import views

urlpatterns = [
    path(
        "organization/switch/",
        admin.site.admin_view(views.organization_switch),
        name="organization-switch",
    ),
]
