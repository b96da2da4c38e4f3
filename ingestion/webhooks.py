"""``POST /webhooks/stripe/<org-slug>/``: Stripe's deliveries, verified and stored once.

Thin: the service verifies the signature on the raw body, deduplicates on the
event id and enqueues processing; this view only turns its verdict into HTTP.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ingestion.services.stripe.events import stripe_webhook_receive


@csrf_exempt
@require_POST
def stripe_webhook(request, org_slug: str) -> JsonResponse:
    result = stripe_webhook_receive(
        org_slug=org_slug, payload=request.body, header=request.headers.get("Stripe-Signature")
    )
    return JsonResponse(result.body, status=result.status)
