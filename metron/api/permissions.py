"""Who may call an API view: service keys by scope, staff by their role's permissions."""

from __future__ import annotations

from rest_framework import exceptions, permissions

from accounts.models import Organization, ServiceAPIKey

NO_ORGANIZATION = "Your account is not a member of any organization."
MISSING_SCOPE = "This API key lacks the '{scope}' scope."


def request_organization(request) -> Organization | None:
    """The organization an API request acts for: the key's, or the staff user's active one."""
    if isinstance(request.auth, ServiceAPIKey):
        return request.auth.organization
    return getattr(request._request, "organization", None)


def required_scope(request, view) -> str:
    """The scope a service key needs: ``view.scopes`` by method, else read / write."""
    scopes = getattr(view, "scopes", {})
    if request.method in scopes:
        return scopes[request.method]
    return (
        ServiceAPIKey.Scope.READ
        if request.method in permissions.SAFE_METHODS
        else ServiceAPIKey.Scope.WRITE
    )


class IsOrganizationMember(permissions.BasePermission):
    """Service key with the needed scope, or a staff member of an organization.

    Staff need the model permission of their role for the view's model:
    ``view`` to read, ``add``/``change``/``delete`` to write.
    """

    perms_map = {
        "GET": "view", "OPTIONS": "view", "HEAD": "view",
        "POST": "add", "PUT": "change", "PATCH": "change", "DELETE": "delete",
    }  # fmt: skip

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ServiceAPIKey):
            scope = required_scope(request, view)
            if not request.auth.has_scope(scope):
                raise exceptions.PermissionDenied(MISSING_SCOPE.format(scope=scope))
            return True
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if not user.is_staff:
            return False
        if request_organization(request) is None:
            raise exceptions.PermissionDenied(NO_ORGANIZATION)
        model = getattr(view, "permission_model", None)
        if model is None:
            queryset = getattr(view, "queryset", None)
            model = queryset.model if queryset is not None else None
        if model is None:
            return True
        action = getattr(view, "permission_action", {}).get(request.method) or self.perms_map.get(
            request.method
        )
        if action is None:
            return False
        meta = model._meta
        return user.has_perm(f"{meta.app_label}.{action}_{meta.model_name}")
