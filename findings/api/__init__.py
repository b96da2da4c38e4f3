"""The findings REST API: findings and triage, remediation items, budgets, weekly review."""
