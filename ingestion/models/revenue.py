"""Revenue lines (billed, recognized, collected), FX rates and manual entries."""

__all__: list[str] = []
