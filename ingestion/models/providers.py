"""Provider connections, synced usage buckets and cost lines, reconciliation."""

__all__: list[str] = []
