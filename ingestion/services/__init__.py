"""Writes of the ingestion app, one module per topic: ingest, rollups, repricing."""
