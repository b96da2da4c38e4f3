"""Multi-tenancy base classes: every organization-owned row, admin and API view."""
