from __future__ import annotations

from django.db import models


class TimeStampedModel(models.Model):
    """Audit timestamps, set by the database layer on insert and on every save."""

    created_at = models.DateTimeField(auto_now_add=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True, editable=False)

    class Meta:
        abstract = True


class OrganizationOwnedModel(TimeStampedModel):
    """A row that belongs to exactly one organization.

    ``organization`` is always set on the server (from the staff user's active
    organization or the service key), never taken from user input.
    """

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+", editable=False
    )

    class Meta:
        abstract = True
