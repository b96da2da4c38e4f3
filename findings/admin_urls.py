"""Custom admin pages of the findings workflow: the weekly review.

Included by ``FindingAdmin.get_urls`` (so they sit in the admin's namespace, under
``/admin/findings/finding/``): ``reverse("admin:findings_weekly_review")``.
"""

from django.contrib import admin
from django.urls import path

from findings.admin import review

urlpatterns = [
    path(
        "review/",
        admin.site.admin_view(review.weekly_review_page),
        name="findings_weekly_review",
    ),
]
