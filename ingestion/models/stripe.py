"""The Stripe mirror: customers, products, prices, subscriptions, invoices, events."""

__all__: list[str] = []
