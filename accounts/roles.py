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

# Provider usage, costs and reconciliation are written by the syncs; staff read them.
PROVIDER_SYNC_READ = {
    "ingestion.providerusagebucket": (VIEW,),
    "ingestion.providercostline": (VIEW,),
    "ingestion.reconciliationline": (VIEW,),
    "ingestion.syncrun": (VIEW,),
}

# The Stripe mirror and revenue lines are written by the sync and webhooks; staff read
# them. Finance owns manual revenue entries and FX rates; ops work the unmatched queue.
STRIPE_REVENUE_READ = {
    **dict.fromkeys(
        [
            "ingestion.stripeconnection", "ingestion.stripecustomer",
            "ingestion.unmatchedstripecustomer", "ingestion.stripeproduct",
            "ingestion.stripeprice", "ingestion.stripesubscription", "ingestion.stripeinvoice",
            "ingestion.stripecreditnote", "ingestion.striperefund", "ingestion.stripeevent",
            "ingestion.revenueline", "ingestion.fxrate", "ingestion.manualrevenueentry",
        ],
        (VIEW,),
    ),
    # Linking a Stripe customer to a Metron customer (the unmatched queue's action).
    "ingestion.stripecustomer": ("change", "view"),
    "ingestion.unmatchedstripecustomer": ("change", "view"),
}  # fmt: skip
REVENUE_EDIT = {"ingestion.manualrevenueentry": ALL, "ingestion.fxrate": ALL}

# Snapshots are written by the recompute and the policy history by the policy service;
# staff read them (the dashboards). Finance and admins change the policy.
ECONOMICS_READ = {
    "economics.economicssnapshot": (VIEW,),
    "economics.customereconomics": (VIEW,),
    "economics.economicspolicy": (VIEW,),
    "economics.economicspolicychange": (VIEW,),
}
POLICY_EDIT = {"economics.economicspolicy": ("change", "view")}

# Findings (DESIGN §8). The services hold the workflow rules (maker-checker, who approves
# pricing); these grants say which screens and buttons a role reaches. "change" on a
# finding = triage steps; on a remediation item = the workflow buttons (submit, approve,
# reject, implement, cancel), each still decided by its service; "add" on a detector run
# = "Run detectors now"; "change" on a delivery = "Retry now". Logs are never deleted.
FINDINGS_LOGS_READ = {
    "findings.findingactivity": (VIEW,),
    "findings.detectorrun": (VIEW,),
    "findings.remediationapproval": (VIEW,),
    "findings.remediationtransition": (VIEW,),
    "findings.budgettransition": (VIEW,),
    "findings.notificationdelivery": (VIEW,),
}
FINDINGS_TRIAGE = {
    **FINDINGS_LOGS_READ,
    "findings.finding": ("change", "view"),
    "findings.findingcomment": ("add", "view"),
    "findings.remediationitem": EDIT,
    "findings.detectorrun": ("add", "view"),
    "findings.notificationdelivery": ("change", "view"),
    "findings.findingspolicy": (VIEW,),
    "findings.budget": (VIEW,),
    "findings.webhookendpoint": (VIEW,),
}
FINDINGS_FINANCE = {
    **FINDINGS_LOGS_READ,
    "findings.finding": (VIEW,),
    "findings.findingcomment": ("add", "view"),
    # Finance decides (approve, reject); it does not request or triage.
    "findings.remediationitem": ("change", "view"),
    "findings.findingspolicy": ("change", "view"),
    "findings.budget": EDIT,
    "findings.webhookendpoint": (VIEW,),
}
FINDINGS_ADMIN = {
    **FINDINGS_TRIAGE,
    "findings.findingspolicy": ("change", "view"),
    "findings.budget": ALL,
    "findings.webhookendpoint": ALL,
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
        **PROVIDER_SYNC_READ,
        # Ops test connections and trigger syncs (admin actions need "change").
        "ingestion.providerconnection": ("change", "view"),
        **STRIPE_REVENUE_READ,
        # Ops test the Stripe connection, sync it now and requeue failed webhook events.
        "ingestion.stripeconnection": ("change", "view"),
        "ingestion.stripeevent": ("change", "view"),
        **ECONOMICS_READ,
        **FINDINGS_TRIAGE,
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
        **PROVIDER_SYNC_READ,
        "ingestion.providerconnection": (VIEW,),
        **STRIPE_REVENUE_READ,
        **REVENUE_EDIT,
        **ECONOMICS_READ,
        **POLICY_EDIT,
        **FINDINGS_FINANCE,
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
        **PROVIDER_SYNC_READ,
        "ingestion.providerconnection": ALL,
        **STRIPE_REVENUE_READ,
        "ingestion.stripeconnection": EDIT,
        "ingestion.stripeevent": ("change", "view"),
        **ECONOMICS_READ,
        **FINDINGS_TRIAGE,
        # Engineering wires the outgoing webhooks.
        "findings.webhookendpoint": EDIT,
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
        **PROVIDER_SYNC_READ,
        "ingestion.providerconnection": ALL,
        **STRIPE_REVENUE_READ,
        **REVENUE_EDIT,
        "ingestion.stripeconnection": ALL,
        "ingestion.stripeevent": ("change", "view"),
        **ECONOMICS_READ,
        **POLICY_EDIT,
        **FINDINGS_ADMIN,
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
