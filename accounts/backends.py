from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission

from accounts.roles import role_group_name


class OrganizationRoleBackend(ModelBackend):
    """Group permissions come from the user's role in the *active* organization.

    A person can be an admin in one organization and ops in another; the
    middleware sets ``user.active_membership`` per request, so permissions
    never leak from one organization's role into another's data.
    """

    def _get_group_permissions(self, user_obj):
        membership = getattr(user_obj, "active_membership", None)
        if membership is None:
            return Permission.objects.none()
        return Permission.objects.filter(group__name=role_group_name(membership.role))
