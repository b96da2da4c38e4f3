"""Local HTTP servers that speak the OpenAI, Anthropic and Stripe wire formats.

Used by the tests and by the demo: the real SDK clients are pointed at them
with ``base_url`` / ``--api-base``. They listen on 127.0.0.1 only.
"""
