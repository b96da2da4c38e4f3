"""The economics dashboards in the admin: tables, charts and their views, read from snapshots."""
