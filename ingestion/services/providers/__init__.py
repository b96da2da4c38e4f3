"""Provider usage and cost sync: connections, the OpenAI and Anthropic admin clients, the sync.

- ``connections``: connect (admin key encrypted at rest), test, build a client;
- ``clients``: one page of usage or costs from each provider, parsed exactly (Decimal);
- ``keys``: provider keys seen in usage, registered unmapped when unknown;
- ``sync``: resumable, idempotent syncs recorded as sync runs.
"""
