"""Roles are Django groups; this module is the one place that says what each grants.

Later apps add their codenames here as they gain models. ``roles_sync`` is
idempotent and runs after every ``migrate``.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from accounts.models import Role

VIEW = "view"
EDIT = ("add", "change", "view")
ALL = ("add", "change", "delete", "view")

# The ledger and its rollups are written by services only; staff read them.
LEDGER_READ = {
    "ingestion.usageevent": (VIEW,),
    "ingestion.dailyusage": (VIEW,),
    "ingestion.repricingrun": (VIEW,),
    "ingestion.unreviewedcustomer": (VIEW,),
    "ingestion.unreviewedfeature": (VIEW,),
}
# Ops work the review queue of what usage registered on its own.
REVIEW_QUEUES = {
    "ingestion.unreviewedcustomer": ("change", "view"),
    "ingestion.unreviewedfeature": ("change", "view"),
}

# role → {app_label.model_name: actions}
ROLE_PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    Role.OPS: {
        "accounts.organization": (VIEW,),
        "accounts.customer": EDIT,
        "accounts.customerplan": EDIT,
        "accounts.plan": (VIEW,),
        "accounts.feature": EDIT,
        "accounts.providerkey": EDIT,
        "accounts.membership": (VIEW,),
        **LEDGER_READ,
        **REVIEW_QUEUES,
        "ingestion.eventconflict": ("change", "view"),
        "ingestion.priceoverride": (VIEW,),
    },
    Role.FINANCE: {
        "accounts.organization": (VIEW,),
        "accounts.customer": EDIT,
        "accounts.customerplan": ALL,
        "accounts.plan": EDIT,
        "accounts.feature": (VIEW,),
        "accounts.providerkey": (VIEW,),
        "accounts.membership": (VIEW,),
        **LEDGER_READ,
        "ingestion.eventconflict": (VIEW,),
        # Negotiated rates are finance's; changing one offers a repricing run.
        "ingestion.priceoverride": ALL,
    },
    Role.ENGINEERING: {
        "accounts.organization": (VIEW,),
        "accounts.customer": (VIEW,),
        "accounts.customerplan": (VIEW,),
        "accounts.plan": (VIEW,),
        "accounts.feature": EDIT,
        "accounts.providerkey": ALL,
        "accounts.membership": (VIEW,),
        "accounts.serviceapikey": EDIT,
        **LEDGER_READ,
        "ingestion.eventconflict": ("change", "view"),
        "ingestion.priceoverride": (VIEW,),
    },
    Role.ADMIN: {
        "accounts.organization": ("change", "view"),
        "accounts.user": ALL,
        "accounts.membership": ALL,
        "accounts.customer": ALL,
        "accounts.customerplan": ALL,
        "accounts.plan": ALL,
        "accounts.feature": ALL,
        "accounts.providerkey": ALL,
        "accounts.serviceapikey": EDIT,
        **LEDGER_READ,
        **REVIEW_QUEUES,
        "ingestion.eventconflict": ("change", "view"),
        "ingestion.priceoverride": ALL,
    },
}


def role_group_name(role: str) -> str:
    return f"Role: {Role(role).label}"


def roles_sync() -> None:
    """Create one group per role and set its permissions to exactly ROLE_PERMISSIONS."""
    for role, grants in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role_group_name(role))
        wanted = []
        for model_label, actions in grants.items():
            app_label, model_name = model_label.split(".")
            wanted.extend(
                Permission.objects.filter(
                    content_type__app_label=app_label,
                    codename__in=[f"{action}_{model_name}" for action in actions],
                )
            )
        group.permissions.set(wanted)


def roles_sync_after_migrate(sender, **kwargs) -> None:
    roles_sync()
