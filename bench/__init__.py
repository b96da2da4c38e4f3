"""Benchmarks of Metron and the reference workload they send (see README.md)."""
