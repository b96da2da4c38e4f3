"""Outgoing notifications (email and signed webhooks) with retries and a delivery log.

:func:`notifications_enqueue` records one :class:`NotificationDelivery` per recipient
and schedules each after commit; :func:`notification_deliver` makes one attempt;
:func:`notifications_retry_due` sends the pending deliveries whose time has come
(retries, and first attempts whose enqueue was lost).

**Webhook wire format.** ``POST <endpoint url>`` with a JSON body::

    {"id": "<delivery id>", "type": "<event type>", "created": "<ISO 8601 UTC>",
     "organization": {"id": 1, "slug": "acme"}, "data": {…the event's payload…}}

Money in ``data`` is a decimal string of USD (``"1234.56"``), never a JSON number.
Headers:

- ``Metron-Event``: the event type (``finding.created``, ``approval.requested``,
  ``approval.decided``, ``budget.transition``);
- ``Metron-Delivery``: the delivery id. Delivery is at least once (a worker may die
  between the POST and recording it): receivers deduplicate on this id;
- ``Metron-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is the HMAC-SHA256,
  keyed with the endpoint's secret, of ``"<t>.<raw body>"`` (Stripe's scheme). Each
  attempt is signed afresh, so receivers can reject stale timestamps (replays); use
  :func:`webhook_signature_verify` on the raw body, before parsing it.

A 2xx answer within 10 seconds is success; anything else (other status, redirect,
timeout, connection error) is retried after 1, 5, 25, 125 and 625 minutes; after the
6th failed attempt the delivery is marked failed. Attempts to an endpoint deactivated
since stop at once. Emails go through Django's mail backend, with the same retries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import smtplib
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

import httpx2
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from accounts.models import Organization
from findings.models import (
    FindingKind,
    FindingsPolicy,
    NotificationDelivery,
    RemediationKind,
    RemediationState,
    WebhookEndpoint,
)
from metron.money import quantize_money

logger = logging.getLogger(__name__)

EVENT_FINDING_CREATED = "finding.created"
EVENT_APPROVAL_REQUESTED = "approval.requested"
EVENT_APPROVAL_DECIDED = "approval.decided"
EVENT_BUDGET_TRANSITION = "budget.transition"
EVENT_TYPES = (
    EVENT_FINDING_CREATED,
    EVENT_APPROVAL_REQUESTED,
    EVENT_APPROVAL_DECIDED,
    EVENT_BUDGET_TRANSITION,
)

DELIVER_TASK = "findings.tasks_notifications.notification_deliver_task"
SIGNATURE_HEADER = "Metron-Signature"
EVENT_HEADER = "Metron-Event"
DELIVERY_HEADER = "Metron-Delivery"
SIGNATURE_TOLERANCE = 300  # seconds a receiver accepts between signing and checking
WEBHOOK_TIMEOUT = 10.0  # seconds, per connect / read / write
MAX_ATTEMPTS = 6
# Minutes to wait after the n-th failed attempt (n = 1 … MAX_ATTEMPTS - 1): ×5 each time,
# so a receiver down for up to ~13 hours still gets the notification.
BACKOFF_MINUTES = (1, 5, 25, 125, 625)
# An attempt claims its delivery for this long (longer than any attempt takes), so
# the immediate task and the retry sweep never send the same delivery twice at once.
CLAIM_SECONDS = 300
RETRY_BATCH = 20  # deliveries per sweep: 20 × 10 s stays below the task timeout
ERROR_EXCERPT = 500  # characters of a failed response kept in last_error
EMAIL_TIMEOUT = 30  # seconds for the mail server, unless settings.EMAIL_TIMEOUT says
ENDPOINT_INACTIVE = "The webhook endpoint was deactivated or deleted: not sent."
ATTEMPT_LOST = "The last attempt never reported back (its worker stopped): given up."


class WebhookSignatureError(ValueError):
    """A webhook signature header that does not prove the body (``str()`` says why)."""


# --- payloads -------------------------------------------------------------------------------


def _jsonable(value, path: str = "payload"):
    """The payload as plain JSON types; money (Decimal) becomes a decimal string.

    Floats are refused: an amount that went through a float is already wrong.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        raise TypeError(f"{path} is a float; send money and ratios as Decimal or str")
    if isinstance(value, datetime):
        return (
            value.astimezone(dt.UTC).isoformat() if timezone.is_aware(value) else value.isoformat()
        )
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(key): _jsonable(item, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item, f"{path}[{index}]") for index, item in enumerate(value)]
    raise TypeError(f"{path} is a {type(value).__name__}, not JSON")


# --- enqueue --------------------------------------------------------------------------------


def _policy_emails(organization: Organization) -> list[str]:
    """The policy's notify addresses: one per line (commas tolerated), valid, deduplicated."""
    raw = (
        FindingsPolicy.objects.filter(organization=organization)
        .values_list("notify_emails", flat=True)
        .first()
    )
    emails, seen = [], set()
    for address in re.split(r"[\s,;]+", raw or ""):
        if not address or address.lower() in seen:
            continue
        try:
            validate_email(address)
        except ValidationError:
            logger.warning(
                "findings policy of org %s: invalid address %r skipped", organization.pk, address
            )
            continue
        seen.add(address.lower())
        emails.append(address)
    return emails


def _enqueue(delivery_id: int) -> None:
    from django_q.tasks import async_task

    async_task(DELIVER_TASK, delivery_id, task_name=f"notification {delivery_id}")


@transaction.atomic
def notifications_enqueue(
    *, organization: Organization, event_type: str, payload: dict
) -> list[NotificationDelivery]:
    """Record one delivery per recipient of ``event_type`` and send them after commit.

    Recipients: each active webhook endpoint subscribed to the event (no event types:
    all events) and each address of the findings policy's ``notify_emails``. Decimals in
    ``payload`` are stored as decimal strings; floats raise ``TypeError``.
    """
    data = _jsonable(payload)
    now = timezone.now()
    endpoints = WebhookEndpoint.objects.filter(organization=organization, active=True).filter(
        Q(event_types=[]) | Q(event_types__contains=[event_type])
    )
    common = {
        "organization": organization,
        "event_type": event_type,
        "payload": data,
        # Due at once: should the enqueue below be lost, the retry sweep sends it.
        "next_attempt_at": now,
    }
    deliveries = [
        NotificationDelivery(
            channel=NotificationDelivery.Channel.WEBHOOK,
            endpoint=endpoint,
            recipient=endpoint.url,
            **common,
        )
        for endpoint in endpoints.order_by("pk")
    ]
    deliveries += [
        NotificationDelivery(
            channel=NotificationDelivery.Channel.EMAIL, recipient=address, **common
        )
        for address in _policy_emails(organization)
    ]
    NotificationDelivery.objects.bulk_create(deliveries)
    for delivery in deliveries:
        # robust: a failing enqueue must not undo the caller's committed work; the
        # delivery is due and the retry sweep picks it up.
        transaction.on_commit(lambda pk=delivery.pk: _enqueue(pk), robust=True)
    return deliveries


# --- signing ----------------------------------------------------------------------------------


def webhook_signature(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Metron-Signature`` header value for ``body`` signed at ``timestamp`` (unix s)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def webhook_signature_verify(
    secret: str,
    header: str | None,
    body: bytes | str,
    tolerance: int = SIGNATURE_TOLERANCE,
    *,
    now: float | None = None,
) -> bool:
    """Check a ``Metron-Signature`` header against the raw body; True, or raise
    :class:`WebhookSignatureError` saying why.

    Any of several ``v1`` values may match (secret rotation). The timestamp must be
    within ``tolerance`` seconds of ``now`` either way (0: no age check); a future
    timestamp is refused too, unlike Stripe's own check.
    """
    if not header:
        raise WebhookSignatureError("No signature header.")
    if isinstance(body, str):
        body = body.encode()
    timestamp, signatures = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamp = value
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not timestamp.isdigit():
        raise WebhookSignatureError("No timestamp in the signature header.")
    if not signatures:
        raise WebhookSignatureError("No v1 signature in the signature header.")
    expected = webhook_signature(secret, body, int(timestamp)).partition(",v1=")[2]
    # Compared as bytes: compare_digest refuses str with non-ASCII characters.
    if not any(hmac.compare_digest(expected.encode(), sig.encode()) for sig in signatures):
        raise WebhookSignatureError("The signature does not match the body.")
    current = time.time() if now is None else now
    if tolerance and abs(current - int(timestamp)) > tolerance:
        raise WebhookSignatureError("The signature timestamp is outside the tolerance.")
    return True


# --- delivery -------------------------------------------------------------------------------


def webhook_body(delivery: NotificationDelivery) -> bytes:
    """The JSON body of a webhook delivery: the same bytes on every attempt."""
    envelope = {
        "id": str(delivery.pk),
        "type": delivery.event_type,
        "created": delivery.created_at.astimezone(dt.UTC).isoformat(),
        "organization": {"id": delivery.organization_id, "slug": delivery.organization.slug},
        "data": delivery.payload,
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()


def _dollars(value) -> str:
    """``"1234.5"`` → ``"$1,234.50"``; anything not a number is shown as given."""
    try:
        amount = quantize_money(Decimal(str(value)))
    except ArithmeticError:
        return str(value)
    return f"-${-amount:,}" if amount < 0 else f"${amount:,}"


def _details(data: dict, indent: str = "  ") -> list[str]:
    lines = []
    for key, value in data.items():
        label = key.replace("_", " ")
        if isinstance(value, dict):
            lines.append(f"{indent}{label}:")
            lines += _details(value, indent + "  ")
        elif value not in (None, "", [], {}):
            lines.append(f"{indent}{label}: {value}")
    return lines


def _label(choices, value) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return str(value)


def _line(label: str, value) -> list[str]:
    return [] if value in (None, "") else [f"  {label}: {value}"]


def email_render(delivery: NotificationDelivery) -> tuple[str, str]:
    """Subject and plain-text body of an email delivery, for a human reader.

    Payloads are read flat (``{"title": …, "monthly_savings": …}``, as detection and
    remediation send them) or nested under ``finding`` / ``remediation``; whatever the
    shape, every field is listed under "Details".
    """
    data = delivery.payload or {}
    org = delivery.organization.name
    event = delivery.event_type
    lines: list[str]
    if event == EVENT_FINDING_CREATED:
        finding = data["finding"] if isinstance(data.get("finding"), dict) else data
        savings = _dollars(finding.get("monthly_savings"))
        title = finding.get("title") or "untitled"
        confidence = finding.get("confidence")
        if confidence and finding.get("confidence_reason"):
            confidence = f"{confidence} — {finding['confidence_reason']}"
        subject = f"New finding: {title} — {savings}/mo"
        lines = [
            f"Metron raised a new finding in {org}.",
            "",
            f"  {title}",
            *_line("Kind", finding.get("kind") and _label(FindingKind, finding["kind"])),
            f"  Monthly savings: {savings}",
            *_line("Confidence", confidence),
            *_line("What to do", finding.get("remediation")),
        ]
    elif event in (EVENT_APPROVAL_REQUESTED, EVENT_APPROVAL_DECIDED):
        item = data["remediation"] if isinstance(data.get("remediation"), dict) else data
        amount = _dollars(item.get("estimated_monthly_savings"))
        title = item.get("title") or "untitled"
        if event == EVENT_APPROVAL_REQUESTED:
            subject = f"Approval requested: {title} — {amount}/mo"
            intro = f"A remediation item in {org} waits for approval."
        else:
            decision = data.get("decision") or item.get("state") or "decided"
            subject = f"Approval {decision}: {title} — {amount}/mo"
            intro = f"A remediation item in {org} was decided: {decision}."
        lines = [
            intro,
            "",
            f"  {title}",
            *_line("Kind", item.get("kind") and _label(RemediationKind, item["kind"])),
            f"  Estimated monthly savings: {amount}",
            *_line("State", item.get("state") and _label(RemediationState, item["state"])),
            *_line("Requested by", item.get("requested_by")),
            *_line("Decided by", data.get("decided_by")),
            *_line("Reason", data.get("reason")),
        ]
    elif event == EVENT_BUDGET_TRANSITION and isinstance(data.get("budget"), dict):
        budget = data["budget"]
        spend, limit = _dollars(data.get("spend")), _dollars(data.get("limit"))
        subject = (
            f"Budget {budget.get('name')}: {data.get('from_state')} → {data.get('to_state')} "
            f"({spend} of {limit})"
        )
        lines = [
            f"A budget of {org} changed state for {str(data.get('month') or '')[:7]}.",
            "",
            f"  Budget: {budget.get('name')} ({budget.get('scope_label') or budget.get('scope')})",
            f"  State: {data.get('from_state')} → {data.get('to_state')}",
            f"  Spent this month: {spend} of {limit} ({data.get('percent')} %)",
            f"  Warning at: {budget.get('warning_percent')} % of the limit",
        ]
    else:
        subject = f"Metron: {event}"
        lines = [f"Metron event {event} in {org}."]
    if data.get("url"):
        lines += ["", f"Open in Metron: {data['url']}"]
    lines += ["", "Details:", *_details(data), "", f"— Metron (delivery {delivery.pk})"]
    # A header must be one line: titles come from data and may hold newlines.
    return " ".join(subject.split()), "\n".join(lines) + "\n"


def _send_email(delivery: NotificationDelivery) -> tuple[bool, int | None, str]:
    subject, body = email_render(delivery)
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[delivery.recipient],
        headers={EVENT_HEADER: delivery.event_type, DELIVERY_HEADER: str(delivery.pk)},
    )
    # Without a timeout an unanswering mail server would hold the worker until the
    # task is killed; the configured one wins when set.
    message.connection = get_connection(timeout=settings.EMAIL_TIMEOUT or EMAIL_TIMEOUT)
    try:
        message.send(fail_silently=False)
    except (smtplib.SMTPException, OSError) as error:
        return False, None, f"{type(error).__name__}: {error}"
    return True, None, ""


def _send_webhook(delivery: NotificationDelivery, now: datetime) -> tuple[bool, int | None, str]:
    endpoint = delivery.endpoint
    if endpoint is None or not endpoint.active:
        return False, None, ENDPOINT_INACTIVE
    body = webhook_body(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Metron-Webhooks/1.0",
        EVENT_HEADER: delivery.event_type,
        DELIVERY_HEADER: str(delivery.pk),
        SIGNATURE_HEADER: webhook_signature(endpoint.secret, body, int(now.timestamp())),
    }
    try:
        # Redirects are not followed: a 3xx is a misconfigured endpoint, and following
        # it would send the signed body somewhere nobody registered.
        with (
            httpx2.Client(timeout=WEBHOOK_TIMEOUT, follow_redirects=False) as client,
            client.stream("POST", endpoint.url, content=body, headers=headers) as response,
        ):
            status = response.status_code
            if 200 <= status < 300:
                return True, status, ""
            excerpt = b""
            # Only the start of the answer is kept: an endpoint may answer with megabytes.
            for chunk in response.iter_bytes():
                excerpt += chunk
                if len(excerpt) >= ERROR_EXCERPT:
                    break
            text = excerpt[:ERROR_EXCERPT].decode(errors="replace")
            return False, status, f"HTTP {status}: {text}".strip()
    except (httpx2.HTTPError, httpx2.InvalidURL) as error:
        return False, None, f"{type(error).__name__}: {error}"[:ERROR_EXCERPT]


def _claim(deliveries: QuerySet[NotificationDelivery], now: datetime) -> int:
    """Take due pending deliveries for one attempt each; returns how many were taken.

    The attempt is counted here, before sending, and the delivery is held for
    ``CLAIM_SECONDS``: a worker killed mid-send still uses up an attempt, so a delivery
    that kills its worker stops after ``MAX_ATTEMPTS`` like any other failure. One
    conditional UPDATE: of two concurrent claimers, only one wins.
    """
    return deliveries.filter(
        status=NotificationDelivery.Status.PENDING,
        next_attempt_at__lte=now,
        attempts__lt=MAX_ATTEMPTS,
    ).update(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS), attempts=F("attempts") + 1)


def _attempt(delivery: NotificationDelivery, now: datetime) -> NotificationDelivery:
    """Send a claimed delivery once and record the outcome (status, error, backoff)."""
    if delivery.channel == NotificationDelivery.Channel.EMAIL:
        ok, status, error = _send_email(delivery)
    else:
        ok, status, error = _send_webhook(delivery, now)
    delivery.response_status = status
    if ok:
        delivery.status = NotificationDelivery.Status.SENT
        delivery.sent_at = timezone.now()
        delivery.next_attempt_at = None
        delivery.last_error = ""
    elif delivery.attempts >= MAX_ATTEMPTS or error == ENDPOINT_INACTIVE:
        delivery.status = NotificationDelivery.Status.FAILED
        delivery.next_attempt_at = None
        delivery.last_error = error
    else:
        delivery.next_attempt_at = now + timedelta(minutes=BACKOFF_MINUTES[delivery.attempts - 1])
        delivery.last_error = error
    delivery.save(
        update_fields=[
            "response_status", "status", "sent_at", "next_attempt_at", "last_error", "updated_at"
        ]
    )  # fmt: skip
    if not ok:
        logger.warning(
            "notification %s to %s failed (attempt %s): %s",
            delivery.pk, delivery.recipient, delivery.attempts, error,
        )  # fmt: skip
    return delivery


def _deliveries(pks: Iterable[int]) -> list[NotificationDelivery]:
    return list(
        NotificationDelivery.objects.filter(pk__in=list(pks))
        .select_related("organization", "endpoint")
        .order_by("next_attempt_at", "pk")
    )


def notification_deliver(
    *, delivery: NotificationDelivery, now: datetime | None = None
) -> NotificationDelivery:
    """Make one attempt at a pending delivery that is due; returns it as it now stands.

    Idempotent: a delivery already sent, failed, not yet due or being attempted
    elsewhere is returned unchanged. No transaction is held during the send.
    """
    now = now or timezone.now()
    if not _claim(NotificationDelivery.objects.filter(pk=delivery.pk), now):
        delivery.refresh_from_db()
        return delivery
    return _attempt(_deliveries([delivery.pk])[0], now)


def notifications_retry_due(*, now: datetime | None = None, limit: int = RETRY_BATCH) -> list[int]:
    """Attempt up to ``limit`` pending deliveries that are due (oldest due first); returns
    their ids. Rows another sweep holds are skipped, not waited for. A delivery whose last
    attempt never reported back (its worker died) is marked failed."""
    now = now or timezone.now()
    pending = NotificationDelivery.objects.filter(
        status=NotificationDelivery.Status.PENDING, next_attempt_at__lte=now
    )
    with transaction.atomic():
        pks = list(
            pending.select_for_update(skip_locked=True)
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        pending.filter(pk__in=pks, attempts__gte=MAX_ATTEMPTS).update(
            status=NotificationDelivery.Status.FAILED, next_attempt_at=None,
            last_error=ATTEMPT_LOST, updated_at=now,
        )  # fmt: skip
        # Claimed in the same transaction as the lock: once it commits, the immediate
        # task and other sweeps see them as taken until the claim runs out.
        _claim(NotificationDelivery.objects.filter(pk__in=pks), now)
    claimed = [d for d in _deliveries(pks) if d.status == NotificationDelivery.Status.PENDING]
    for delivery in claimed:
        _attempt(delivery, now)
    return [delivery.pk for delivery in claimed]


@transaction.atomic
def notification_retry_now(*, delivery: NotificationDelivery) -> NotificationDelivery:
    """Make a failed or waiting delivery due now (one more attempt) and send it after
    commit: the admin's "retry now". A sent delivery is left alone."""
    locked = NotificationDelivery.objects.select_for_update().get(pk=delivery.pk)
    if locked.status == NotificationDelivery.Status.SENT:
        return locked
    if locked.status == NotificationDelivery.Status.FAILED:
        # One more attempt: the counter steps back below the maximum.
        locked.attempts = min(locked.attempts, MAX_ATTEMPTS - 1)
    locked.status = NotificationDelivery.Status.PENDING
    locked.next_attempt_at = timezone.now()
    locked.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
    transaction.on_commit(lambda: _enqueue(locked.pk), robust=True)
    return locked
