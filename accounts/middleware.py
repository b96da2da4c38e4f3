from __future__ import annotations

from accounts.selectors import active_organization_resolve


class ActiveOrganizationMiddleware:
    """Sets ``request.organization`` (and the user's active membership) for staff.

    Every admin and session-authenticated API view scopes its data to this
    organization; it is chosen among the user's memberships, never from input.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.organization = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            organization, membership = active_organization_resolve(
                user=user, preferred_id=request.session.get(ACTIVE_ORGANIZATION_SESSION_KEY)
            )
            request.organization = organization
            user.active_organization = organization
            user.active_membership = membership
        return self.get_response(request)


ACTIVE_ORGANIZATION_SESSION_KEY = "metron_active_organization"
