"""Notifications: recipients, signed webhooks to a real local server, retries, email."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail

from findings.models import (
    FindingsPolicy,
    NotificationDelivery,
    WebhookEndpoint,
)
from findings.services import notifications as service
from findings.services.notifications import (
    BACKOFF_MINUTES,
    MAX_ATTEMPTS,
    WebhookSignatureError,
    notification_deliver,
    notification_retry_now,
    notifications_enqueue,
    notifications_retry_due,
    webhook_signature,
    webhook_signature_verify,
)
from findings.tasks_notifications import notification_deliver_task, notification_schedules
from ingestion.schedules import all_schedules

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_0123456789"
Status = NotificationDelivery.Status


class Receiver:
    """A webhook receiver on 127.0.0.1: records each request, answers ``statuses`` in turn
    (the last one repeats), optionally after ``delay`` seconds."""

    def __init__(self, statuses=(200,), delay: float = 0.0, location: str | None = None):
        self.statuses = list(statuses)
        self.delay = delay
        self.location = location
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append((dict(self.headers), body))
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.statuses[min(len(receiver.requests), len(receiver.statuses)) - 1]
                answer = b"nope: receiver is down" if status >= 300 else b"ok"
                try:
                    self.send_response(status)
                    if receiver.location:
                        self.send_header("Location", receiver.location)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/metron"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory():
    receivers = []

    def make(**kwargs):
        receiver = Receiver(**kwargs)
        receivers.append(receiver)
        return receiver

    yield make
    for receiver in receivers:
        receiver.close()


def endpoint_create(org, url, **fields):
    return WebhookEndpoint.objects.create(organization=org, url=url, secret=SECRET, **fields)


# --- recipients ---------------------------------------------------------------------------


def test_enqueue_one_delivery_per_subscribed_endpoint_and_policy_address(org, other_org):
    everything = endpoint_create(org, "https://hooks.example.com/all")
    budgets = endpoint_create(org, "https://hooks.example.com/budgets",
                              event_types=["budget.transition"])  # fmt: skip
    endpoint_create(org, "https://hooks.example.com/findings", event_types=["finding.created"])
    endpoint_create(org, "https://hooks.example.com/off", active=False)
    endpoint_create(other_org, "https://hooks.example.com/rival")
    FindingsPolicy.objects.create(
        organization=org,
        notify_emails="finance@acme.test\n\nops@acme.test, not-an-address\nFINANCE@acme.test\n",
    )

    deliveries = notifications_enqueue(
        organization=org, event_type="budget.transition", payload={"spend": Decimal("80.00")}
    )

    assert [(d.channel, d.recipient, d.endpoint_id) for d in deliveries] == [
        ("webhook", everything.url, everything.pk),
        ("webhook", budgets.url, budgets.pk),
        ("email", "finance@acme.test", None),
        ("email", "ops@acme.test", None),
    ]
    assert {d.status for d in deliveries} == {Status.PENDING}
    assert NotificationDelivery.objects.filter(organization=other_org).count() == 0


def test_enqueue_without_policy_sends_no_email(org):
    endpoint_create(org, "https://hooks.example.com/all")

    deliveries = notifications_enqueue(organization=org, event_type="finding.created", payload={})

    assert [d.channel for d in deliveries] == ["webhook"]


def test_payload_money_is_stored_as_decimal_strings(org):
    endpoint_create(org, "https://hooks.example.com/all")

    (delivery,) = notifications_enqueue(
        organization=org, event_type="budget.transition",
        payload={"spend": Decimal("1234.50"), "rows": [{"cost": Decimal("0.000123456789")}],
                 "month": date(2026, 4, 1)},
    )  # fmt: skip

    delivery.refresh_from_db()
    assert delivery.payload == {
        "spend": "1234.50",
        "rows": [{"cost": "0.000123456789"}],
        "month": "2026-04-01",
    }


def test_payload_with_a_float_is_refused(org):
    with pytest.raises(TypeError, match=r"payload\.spend is a float"):
        notifications_enqueue(organization=org, event_type="x", payload={"spend": 12.5})


def test_enqueue_schedules_each_delivery_after_commit(org, django_capture_on_commit_callbacks):
    endpoint_create(org, "https://hooks.example.com/a")
    endpoint_create(org, "https://hooks.example.com/b")

    with django_capture_on_commit_callbacks() as callbacks:
        notifications_enqueue(organization=org, event_type="finding.created", payload={})

    assert len(callbacks) == 2


# --- webhooks -------------------------------------------------------------------------------


def test_webhook_is_delivered_signed_after_commit(
    org, receiver_factory, django_capture_on_commit_callbacks
):
    receiver = receiver_factory()
    endpoint = endpoint_create(org, receiver.url)

    with django_capture_on_commit_callbacks(execute=True):
        (delivery,) = notifications_enqueue(
            organization=org, event_type="budget.transition",
            payload={"spend": Decimal("80.00"), "limit": Decimal("100.00")},
        )  # fmt: skip

    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    assert webhook_signature_verify(endpoint.secret, headers["Metron-Signature"], body) is True
    assert headers["Metron-Event"] == "budget.transition"
    assert headers["Metron-Delivery"] == str(delivery.pk)
    assert headers["Content-Type"] == "application/json"
    sent = json.loads(body)
    assert sent["id"] == str(delivery.pk)
    assert sent["type"] == "budget.transition"
    assert sent["organization"] == {"id": org.pk, "slug": "acme"}
    assert sent["data"] == {"spend": "80.00", "limit": "100.00"}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == (Status.SENT, 1, 200)
    assert delivery.sent_at is not None
    assert delivery.next_attempt_at is None


def test_failing_endpoint_is_retried_with_backoff_then_marked_failed(org, receiver_factory):
    receiver = receiver_factory(statuses=(500,))
    endpoint_create(org, receiver.url)
    (delivery,) = notifications_enqueue(organization=org, event_type="finding.created",
                                        payload={"n": 1})  # fmt: skip
    now = datetime.now(UTC)

    delivery = notification_deliver(delivery=delivery, now=now)

    assert (delivery.status, delivery.attempts, delivery.response_status) == (
        Status.PENDING,
        1,
        500,
    )
    assert delivery.last_error == "HTTP 500: nope: receiver is down"
    assert delivery.next_attempt_at == now + timedelta(minutes=1)

    # Not due yet: the sweep leaves it alone.
    assert notifications_retry_due(now=now + timedelta(seconds=59)) == []
    assert len(receiver.requests) == 1

    for attempt in range(2, MAX_ATTEMPTS + 1):
        now = delivery.next_attempt_at
        assert notifications_retry_due(now=now) == [delivery.pk]
        delivery.refresh_from_db()
        assert delivery.attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert delivery.status == Status.PENDING
            assert delivery.next_attempt_at == now + timedelta(minutes=BACKOFF_MINUTES[attempt - 1])

    assert (delivery.status, delivery.attempts) == (Status.FAILED, MAX_ATTEMPTS)
    assert delivery.next_attempt_at is None
    assert len(receiver.requests) == MAX_ATTEMPTS
    assert BACKOFF_MINUTES == (1, 5, 25, 125, 625)  # about 13 hours from first to last
    # Failed for good: later sweeps send nothing more.
    assert notifications_retry_due(now=now + timedelta(days=30)) == []
    assert len(receiver.requests) == MAX_ATTEMPTS


def test_a_retry_that_succeeds_marks_the_delivery_sent(org, receiver_factory):
    receiver = receiver_factory(statuses=(503, 204))
    endpoint = endpoint_create(org, receiver.url)
    (delivery,) = notifications_enqueue(organization=org, event_type="finding.created",
                                        payload={})  # fmt: skip
    now = datetime.now(UTC)
    notification_deliver(delivery=delivery, now=now)

    notifications_retry_due(now=now + timedelta(minutes=1))

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == (Status.SENT, 2, 204)
    assert delivery.last_error == ""
    # The same body both times, each attempt signed afresh.
    (h1, b1), (h2, b2) = receiver.requests
    assert b1 == b2
    assert h1["Metron-Signature"] != h2["Metron-Signature"]
    webhook_signature_verify(endpoint.secret, h2["Metron-Signature"], b2,
                             now=(now + timedelta(minutes=1)).timestamp())  # fmt: skip


def test_unreachable_endpoint_and_redirects_are_failures(org, receiver_factory):
    redirecting = receiver_factory(statuses=(302,), location="https://elsewhere.example.com/")
    refused = receiver_factory()
    refused_url = refused.url
    refused.close()  # nothing listens there any more
    endpoint_create(org, redirecting.url)
    endpoint_create(org, refused_url)
    deliveries = notifications_enqueue(organization=org, event_type="finding.created", payload={})

    by_url = {d.recipient: notification_deliver(delivery=d) for d in deliveries}

    moved = by_url[redirecting.url]
    assert (moved.status, moved.attempts, moved.response_status) == (Status.PENDING, 1, 302)
    down = by_url[refused_url]
    assert (down.status, down.attempts, down.response_status) == (Status.PENDING, 1, None)
    assert down.last_error.startswith("ConnectError")


def test_slow_endpoint_times_out(org, receiver_factory, monkeypatch):
    monkeypatch.setattr(service, "WEBHOOK_TIMEOUT", 0.3)
    receiver = receiver_factory(delay=1.0)
    endpoint_create(org, receiver.url)
    (delivery,) = notifications_enqueue(organization=org, event_type="finding.created", payload={})

    delivery = notification_deliver(delivery=delivery)

    assert (delivery.status, delivery.attempts) == (Status.PENDING, 1)
    assert delivery.last_error.startswith("ReadTimeout")


def test_a_delivery_is_sent_once(org, receiver_factory):
    receiver = receiver_factory()
    endpoint_create(org, receiver.url)
    (delivery,) = notifications_enqueue(organization=org, event_type="finding.created", payload={})
    now = datetime.now(UTC)

    notification_deliver(delivery=delivery, now=now)
    again = notification_deliver(delivery=delivery, now=now + timedelta(minutes=5))
    swept = notifications_retry_due(now=now + timedelta(minutes=5))
    by_task = notification_deliver_task(delivery.pk)

    assert len(receiver.requests) == 1
    assert (again.status, again.attempts, swept, by_task) == (Status.SENT, 1, [], "sent")


def test_a_claimed_delivery_is_not_sent_by_a_second_attempt(org, receiver_factory):
    receiver = receiver_factory()
    endpoint_create(org, receiver.url)
    (delivery,) = notifications_enqueue(organization=org, event_type="finding.created", payload={})
    now = datetime.now(UTC)
    # Another worker claimed it and is sending: the attempt is already counted.
    assert service._claim(NotificationDelivery.objects.filter(pk=delivery.pk), now) == 1

    result = notification_deliver(delivery=delivery, now=now + timedelta(seconds=30))

    assert (result.status, result.attempts, len(receiver.requests)) == (Status.PENDING, 1, 0)
    assert notifications_retry_due(now=now + timedelta(seconds=30)) == []


def test_a_delivery_whose_worker_died_on_the_last_attempt_is_given_up(org, receiver_factory):
    receiver = receiver_factory()
    endpoint_create(org, receiver.url)
    (delivery,) = notifications_enqueue(organization=org, event_type="finding.created", payload={})
    now = datetime.now(UTC)
    # The last attempt was claimed, then its worker was killed before recording anything.
    NotificationDelivery.objects.filter(pk=delivery.pk).update(attempts=MAX_ATTEMPTS - 1)
    service._claim(NotificationDelivery.objects.filter(pk=delivery.pk), now)

    after_the_claim = now + timedelta(seconds=service.CLAIM_SECONDS)
    assert notifications_retry_due(now=after_the_claim) == []

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Status.FAILED, MAX_ATTEMPTS)
    assert delivery.last_error == service.ATTEMPT_LOST
    assert receiver.requests == []


def test_a_deactivated_endpoint_gets_no_more_attempts(org, receiver_factory):
    receiver = receiver_factory(statuses=(500,))
    endpoint = endpoint_create(org, receiver.url)
    (delivery,) = notifications_enqueue(organization=org, event_type="finding.created", payload={})
    now = datetime.now(UTC)
    notification_deliver(delivery=delivery, now=now)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)

    notifications_retry_due(now=now + timedelta(minutes=1))

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Status.FAILED, 2)
    assert delivery.last_error == service.ENDPOINT_INACTIVE
    assert len(receiver.requests) == 1


def test_retry_now_gives_a_failed_delivery_one_more_attempt(org, receiver_factory):
    receiver = receiver_factory()
    endpoint_create(org, receiver.url)
    (delivery,) = notifications_enqueue(organization=org, event_type="finding.created", payload={})
    NotificationDelivery.objects.filter(pk=delivery.pk).update(
        status=Status.FAILED, attempts=MAX_ATTEMPTS, next_attempt_at=None
    )

    retried = notification_retry_now(delivery=delivery)
    sent = notification_deliver(delivery=retried)

    assert (retried.status, retried.attempts) == (Status.PENDING, MAX_ATTEMPTS - 1)
    assert (sent.status, sent.attempts, len(receiver.requests)) == (Status.SENT, MAX_ATTEMPTS, 1)


def test_deliver_task_of_a_vanished_delivery_does_nothing():
    assert notification_deliver_task(987654321) == "missing"


# --- signatures -----------------------------------------------------------------------------


def test_signature_verify_accepts_genuine_and_rejects_the_rest():
    body = b'{"id":"1","data":{"spend":"80.00"}}'
    now = 1_770_000_000
    header = webhook_signature(SECRET, body, now)
    assert header.startswith(f"t={now},v1=")

    assert webhook_signature_verify(SECRET, header, body, now=now + 299) is True
    assert webhook_signature_verify(SECRET, header, body.decode(), now=now) is True
    # During a secret rotation the sender signs with both; either secret verifies.
    rotated = f"{header},v1={webhook_signature('whsec_new', body, now).split('v1=')[1]}"
    assert webhook_signature_verify("whsec_new", rotated, body, now=now) is True

    cases = {
        "tampered body": (SECRET, header, body.replace(b"80.00", b"8.00"), now),
        "wrong secret": ("whsec_other", header, body, now),
        "stale": (SECRET, header, body, now + 301),
        "from the future": (SECRET, header, body, now - 301),
        "no header": (SECRET, None, body, now),
        "no timestamp": (SECRET, header.split(",")[1], body, now),
        "no v1": (SECRET, f"t={now},v0=abc", body, now),
        "non-ASCII signature": (SECRET, f"t={now},v1=é", body, now),
    }
    for name, (secret, value, payload, at) in cases.items():
        with pytest.raises(WebhookSignatureError):
            webhook_signature_verify(secret, value, payload, now=at)
            pytest.fail(name)


# --- email ----------------------------------------------------------------------------------


def test_finding_email_is_readable_and_carries_the_figures(org):
    FindingsPolicy.objects.create(organization=org, notify_emails="finance@acme.test")
    # The payload as the detection run sends it.
    (delivery,) = notifications_enqueue(
        organization=org, event_type="finding.created",
        payload={"finding_id": 7, "kind": "model_overkill",
                 "title": "gpt-4o classifies support tickets",
                 "monthly_savings": Decimal("1234.50"), "confidence": "high",
                 "remediation": "Route support-triage to gpt-4o-mini.", "status": "open"},
    )  # fmt: skip

    delivery = notification_deliver(delivery=delivery)

    assert delivery.status == Status.SENT
    (message,) = mail.outbox
    assert message.to == ["finance@acme.test"]
    assert message.subject == "New finding: gpt-4o classifies support tickets — $1,234.50/mo"
    assert "Kind: Model overkill" in message.body
    assert "Monthly savings: $1,234.50" in message.body
    assert "Confidence: high" in message.body
    assert "What to do: Route support-triage to gpt-4o-mini." in message.body
    assert "monthly savings: 1234.50" in message.body  # the details, as sent
    assert message.extra_headers["Metron-Event"] == "finding.created"
    assert message.extra_headers["Metron-Delivery"] == str(delivery.pk)
    assert delivery.payload["monthly_savings"] == "1234.50"


def test_approval_emails_name_the_item_and_the_decision(org):
    FindingsPolicy.objects.create(organization=org, notify_emails="finance@acme.test")
    item = {"remediation_id": 3, "title": "Reprice Pro to $59", "kind": "reprice_plan",
            "estimated_monthly_savings": "2500.00", "requested_by": "ops-acme"}  # fmt: skip
    (requested,) = notifications_enqueue(
        organization=org, event_type="approval.requested",
        payload={**item, "state": "pending_approval"},
    )  # fmt: skip
    (decided,) = notifications_enqueue(
        organization=org, event_type="approval.decided",
        payload={**item, "state": "approved", "decision": "approved",
                 "decided_by": "finance-acme", "reason": "Matches the cost model."},
    )  # fmt: skip

    notification_deliver(delivery=requested)
    notification_deliver(delivery=decided)

    asked, answered = mail.outbox
    assert asked.subject == "Approval requested: Reprice Pro to $59 — $2,500.00/mo"
    assert "Kind: Reprice plan" in asked.body
    assert "State: Pending approval" in asked.body
    assert answered.subject == "Approval approved: Reprice Pro to $59 — $2,500.00/mo"
    assert "Decided by: finance-acme" in answered.body
    assert "Reason: Matches the cost model." in answered.body


def test_budget_email_subject_names_the_transition(org):
    FindingsPolicy.objects.create(organization=org, notify_emails="ops@acme.test")
    (delivery,) = notifications_enqueue(
        organization=org, event_type="budget.transition",
        payload={"budget": {"name": "Org AI spend", "scope": "organization",
                            "scope_label": "Organization", "warning_percent": 80},
                 "month": "2026-04-01", "from_state": "ok", "to_state": "warning",
                 "spend": Decimal("8500.00"), "limit": Decimal("10000.00"), "percent": "85.0"},
    )  # fmt: skip

    notification_deliver(delivery=delivery)

    (message,) = mail.outbox
    assert message.subject == "Budget Org AI spend: ok → warning ($8,500.00 of $10,000.00)"
    assert "Spent this month: $8,500.00 of $10,000.00 (85.0 %)" in message.body


def test_email_failure_is_retried(org, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1
    FindingsPolicy.objects.create(organization=org, notify_emails="ops@acme.test")
    (delivery,) = notifications_enqueue(organization=org, event_type="approval.requested",
                                        payload={})  # fmt: skip

    delivery = notification_deliver(delivery=delivery)

    assert (delivery.status, delivery.attempts) == (Status.PENDING, 1)
    assert delivery.last_error.startswith("ConnectionRefusedError")


# --- schedules ------------------------------------------------------------------------------


def test_notification_and_budget_schedules_are_registered():
    names = {spec.name: spec for spec in all_schedules()}
    for spec in notification_schedules():
        assert names[spec.name] == spec
    assert {spec.func for spec in notification_schedules()} == {
        "findings.tasks_notifications.notifications_retry_due_task",
        "findings.tasks_budgets.budgets_evaluate_all",
    }
