"""django-q2 entry points of budgets: evaluate each organization's active budgets.

Safe to run twice: an evaluation with nothing changed records nothing.
"""

from __future__ import annotations

from accounts.models import Organization
from findings.models import Budget
from findings.services.budgets import budgets_evaluate


def budgets_evaluate_task(organization_id: int) -> int:
    """Evaluate one organization's budgets; returns the number of transitions recorded."""
    organization = Organization.objects.get(pk=organization_id)
    return len(budgets_evaluate(organization=organization))


def budgets_evaluate_all() -> dict[int, int]:
    """The schedule: every organization with an active budget, one after the other."""
    organizations = (
        Budget.objects.filter(active=True)
        .order_by("organization_id")
        .values_list("organization_id", flat=True)
        .distinct()
    )
    return {pk: budgets_evaluate_task(pk) for pk in organizations}
