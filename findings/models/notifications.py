"""Outgoing notifications: signed webhooks and emails, and the log of every delivery."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models

from metron.tenancy.models import OrganizationOwnedModel


class WebhookEndpoint(OrganizationOwnedModel):
    """A URL that receives Metron's events, signed with HMAC-SHA256 of its secret."""

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(
        max_length=100, help_text="Shared secret for the Metron-Signature header."
    )
    event_types = ArrayField(
        models.CharField(max_length=50), default=list, blank=True,
        help_text="Events sent to this endpoint; empty: all.",
    )  # fmt: skip
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["url"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return self.description or self.url


class NotificationDelivery(OrganizationOwnedModel):
    """One notification to one recipient (an email address or a webhook endpoint)."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (retries exhausted)"

    event_type = models.CharField(
        max_length=50, help_text="finding.created, approval.requested, approval.decided, "
        "budget.transition, …",
    )  # fmt: skip
    channel = models.CharField(max_length=10, choices=Channel.choices)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, null=True, blank=True,
        related_name="deliveries",
    )  # fmt: skip
    recipient = models.CharField(max_length=500, help_text="Email address or URL.")
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "notification deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.recipient}"
