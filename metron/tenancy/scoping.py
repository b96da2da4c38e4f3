"""How to restrict any model's queryset to one organization.

Used by the admin (changelists, FK dropdowns, filters, autocomplete) and the
API (querysets, FK fields in payloads), so both answer the same question the
same way.
"""

from __future__ import annotations

from django.db.models import Model, QuerySet


def organization_path(model: type[Model]) -> str | None:
    """The lookup from ``model`` to its organization, or None if it is not owned by one."""
    from accounts.models import Organization, User

    if model is Organization:
        return "pk"
    if model is User:
        return "memberships__organization"
    try:
        field = model._meta.get_field("organization")
    except Exception:  # noqa: BLE001 - FieldDoesNotExist and reverse relations alike
        return None
    return "organization" if field.is_relation else None


def scope_queryset(queryset: QuerySet, organization) -> QuerySet:
    """Rows of ``queryset`` that belong to ``organization`` (none if it is None).

    Models without an organization are returned unchanged; callers restrict
    those (e.g. to superusers) by permission instead.
    """
    path = organization_path(queryset.model)
    if path is None:
        return queryset
    if organization is None:
        return queryset.none()
    scoped = queryset.filter(**{path: organization.pk})
    # Users can reach the organization through one membership only, but keep
    # the rows distinct in case a join fans out.
    return scoped.distinct() if "__" in path else scoped
