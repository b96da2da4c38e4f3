"""The Stripe mirror: client, backfill, webhook events, customer and plan matching.

Modules: ``client`` (the one place a ``StripeClient`` is built, 429 backoff),
``connection`` (keys at rest), ``mirror`` (idempotent upserts by Stripe id and
their knock-on effects on revenue), ``backfill`` (resumable list sync),
``events`` (signed webhooks, dedup, order-independent processing) and ``plans``
(customer plan history from subscriptions).
"""
