"""The deterministic demo organization: plans, customers, features, provider keys, staff.

Determinism: every value comes from constants or from ``random.Random(DEMO_SEED)``,
and every date is fixed relative to ``DEMO_ANCHOR`` (a past date), never ``now()``.
Customers start over the 18 months before the anchor; each plan history is a
sequence of periods whose last one stays open (``valid_to`` empty) unless the
customer churned, so every active customer has a plan in force today, whatever
today is, while the rows stay identical from one run (or machine) to the next.

Re-runnable: rows are upserted by their natural keys (plan code, feature key,
provider + key id, customer external id, username) through the services, and
only what differs from the spec is written; a second run writes nothing. A plan
history that no longer matches the spec (edited in the admin, or an older seed)
is replaced, so a re-run brings the demo back to its seeded state. Rows that are
not in the spec (customers added by hand) are left alone.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.text import slugify

from accounts import services
from accounts.models import (
    Customer,
    CustomerPlan,
    Environment,
    Feature,
    Membership,
    Organization,
    Plan,
    Provider,
    ProviderKey,
    Role,
    User,
)

DEMO_SLUG = "demo"
DEMO_NAME = "Demo AI Co"
DEMO_PASSWORD = "metron-demo"
DEMO_SEED = 20261101
DEMO_ANCHOR = date(2026, 11, 1)  # cohorts end here; open plan periods run on to today
COHORT_DAYS = 548  # about 18 months of customer start dates before the anchor
GENERATED_CUSTOMERS = 193  # plus the named and internal accounts: 200 in all

FREE, STARTER, PRO, ENTERPRISE = "free", "starter", "pro", "enterprise"
SMB, MID_MARKET, ENTERPRISE_SEGMENT = "smb", "mid-market", "enterprise"


@dataclass(frozen=True)
class PlanSpec:
    code: str
    name: str
    price: Decimal  # USD per month
    stripe_price_ids: tuple[str, ...]
    is_free: bool = False


@dataclass(frozen=True)
class FeatureSpec:
    key: str
    name: str
    team: str
    launched_on: date
    description: str
    status: str = Feature.Status.ACTIVE


@dataclass(frozen=True)
class ProviderKeySpec:
    provider: str
    key_id: str  # the provider's id of the key, never a secret
    label: str
    feature_key: str | None
    team: str
    environment: str = Environment.PRODUCTION


@dataclass(frozen=True)
class CustomerSpec:
    name: str
    segment: str
    region: str
    history: tuple[tuple[str, date], ...]  # (plan code, first day), in order
    churned_on: date | None = None  # the last period ends here
    is_internal: bool = False
    stripe_customer_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def external_id(self) -> str:
        return slugify(self.name)

    def fields(self) -> dict[str, Any]:
        """The customer's own fields, as ``customer_create`` takes them."""
        return {
            "name": self.name,
            "stripe_customer_id": self.stripe_customer_id,
            "segment": self.segment,
            "region": self.region,
            "metadata": self.metadata,
            "started_on": self.history[0][1],
            "is_internal": self.is_internal,
            "status": Customer.Status.CHURNED if self.churned_on else Customer.Status.ACTIVE,
            "needs_review": False,
        }


PLANS = (
    PlanSpec(FREE, "Free", Decimal("0.00"), ("price_demo_free",), is_free=True),
    PlanSpec(STARTER, "Starter", Decimal("49.00"), ("price_demo_starter_monthly",)),
    PlanSpec(PRO, "Pro", Decimal("499.00"), ("price_demo_pro_monthly", "price_demo_pro_2025")),
    PlanSpec(ENTERPRISE, "Enterprise", Decimal("4999.00"), ("price_demo_enterprise_monthly",)),
)

FEATURES = (
    FeatureSpec(
        "chat-assistant", "Chat assistant", "Assistant", date(2024, 3, 4),
        "In-product assistant answering questions over the customer's workspace.",
    ),
    FeatureSpec(
        "semantic-search", "Semantic search", "Search", date(2024, 9, 16),
        "Embedding search across documents and tickets.",
    ),
    FeatureSpec(
        "document-summarization", "Document summarization", "Documents", date(2025, 2, 10),
        "Summaries of uploaded documents on demand.",
    ),
    FeatureSpec(
        "ai-onboarding", "AI onboarding", "Growth", date(2025, 7, 21),
        "Guided setup that drafts a new workspace from a short interview.",
    ),
    FeatureSpec(
        "overnight-summaries", "Overnight summaries", "Documents", date(2026, 1, 12),
        "Nightly digest of each workspace's activity; runs as a scheduled job.",
    ),
    FeatureSpec(
        "research-agent", "Research agent", "Labs", date(2026, 9, 1),
        "Beta: multi-step research over the web and the workspace's documents.",
    ),
    FeatureSpec(
        "legacy-classifier", "Legacy ticket classifier", "Support tooling", date(2023, 5, 1),
        "Routed support tickets before the chat assistant; retired.",
        status=Feature.Status.RETIRED,
    ),
)  # fmt: skip

OPENAI, ANTHROPIC = Provider.OPENAI, Provider.ANTHROPIC
PROVIDER_KEYS = (
    ProviderKeySpec(
        OPENAI, "key_Hx4pQ9mT2vL8nR6w", "Chat assistant (prod)", "chat-assistant", "Assistant"
    ),
    ProviderKeySpec(
        OPENAI, "key_J3sW7bNc5KdY1fZq", "Chat assistant (staging)", "chat-assistant", "Assistant",
        Environment.STAGING,
    ),
    ProviderKeySpec(
        OPENAI, "key_Tm2Vr8Lq4XcP9gEa", "Search embeddings (prod)", "semantic-search", "Search"
    ),
    ProviderKeySpec(
        OPENAI, "key_Bn6Yh1Qw3ZsK7uDe", "Ticket classifier (prod)", "legacy-classifier",
        "Support tooling",
    ),
    # Spend shows up on this key but nobody has claimed it: the demo's unmapped key.
    ProviderKeySpec(OPENAI, "key_Pz5Cx9Mv2RtL4wGh", "Unlabelled key", None, ""),
    ProviderKeySpec(
        ANTHROPIC, "apikey_01Rj2N8SVvo6BePZj99NhmiT", "Summaries (prod)",
        "document-summarization", "Documents",
    ),
    ProviderKeySpec(
        ANTHROPIC, "apikey_01Sd4Kp7WqLx2NfRb8TzHc5M", "Summaries (staging)",
        "document-summarization", "Documents", Environment.STAGING,
    ),
    ProviderKeySpec(
        ANTHROPIC, "apikey_01Hc7Xk3QmWp9TzLb4NvYs2E", "Overnight digest jobs (prod)",
        "overnight-summaries", "Documents",
    ),
    ProviderKeySpec(
        ANTHROPIC, "apikey_01Fa5Gd8LsVq2JxRc6PwMn3K", "Onboarding interview (prod)",
        "ai-onboarding", "Growth",
    ),
)  # fmt: skip

NAMED_CUSTOMERS = (
    CustomerSpec(
        "Helix Labs", ENTERPRISE_SEGMENT, "na",
        ((PRO, date(2025, 6, 2)), (ENTERPRISE, date(2026, 2, 1))),
        stripe_customer_id="cus_DemoHelixLabs01",
        metadata={"industry": "biotech", "employees": 2400},
    ),
    CustomerSpec(
        "Northwind AI", ENTERPRISE_SEGMENT, "eu", ((ENTERPRISE, date(2025, 8, 18)),),
        stripe_customer_id="cus_DemoNorthwind01",
        metadata={"industry": "software", "employees": 5200},
    ),
    CustomerSpec(
        "Nimbus Health", ENTERPRISE_SEGMENT, "na", ((ENTERPRISE, date(2025, 11, 3)),),
        stripe_customer_id="cus_DemoNimbusHlth1",
        metadata={"industry": "healthcare", "employees": 12800},
    ),
    CustomerSpec(
        "Atlas Robotics", MID_MARKET, "apac",
        ((STARTER, date(2025, 9, 15)), (PRO, date(2026, 4, 1))),
        stripe_customer_id="cus_DemoAtlasRobot1",
        metadata={"industry": "manufacturing", "employees": 640},
    ),
    CustomerSpec(
        "Beacon", MID_MARKET, "eu", ((PRO, date(2026, 3, 9)),),
        stripe_customer_id="cus_DemoBeacon0001",
        metadata={"industry": "media", "employees": 310},
    ),
    CustomerSpec(
        "Demo AI Co (internal)", ENTERPRISE_SEGMENT, "na", ((ENTERPRISE, date(2025, 5, 5)),),
        is_internal=True, metadata={"purpose": "dogfooding"},
    ),
    CustomerSpec(
        "QA Test Account", SMB, "na", ((FREE, date(2025, 5, 5)),),
        is_internal=True, metadata={"purpose": "end-to-end tests"},
    ),
)  # fmt: skip

NAME_PREFIXES = (
    "Aurora", "Bluebird", "Cascade", "Cedar", "Cobalt", "Copper", "Crescent", "Delta", "Ember",
    "Everest", "Falcon", "Fathom", "Fjord", "Foxglove", "Granite", "Harbor", "Horizon", "Indigo",
    "Iris", "Juniper", "Keystone", "Kestrel", "Lattice", "Lighthouse", "Lumen", "Maple",
    "Meridian", "Mosaic", "Nova", "Oakridge", "Onyx", "Orbit", "Orchid", "Pebble", "Pinnacle",
    "Polaris", "Quartz", "Quill", "Redwood", "Ridge", "Sable", "Sage", "Sequoia", "Sierra",
    "Solstice", "Sparrow", "Summit", "Tandem", "Tidal", "Topaz", "Trellis", "Tundra", "Vantage",
    "Verde", "Vertex", "Willow", "Wren", "Zenith", "Zephyr",
)  # fmt: skip
# Suffix → industry, so names and metadata tell the same story.
NAME_SUFFIXES = {
    "Analytics": "software", "Bio": "biotech", "Capital": "fintech", "Cloud": "software",
    "Commerce": "retail", "Data": "software", "Dynamics": "manufacturing", "Energy": "energy",
    "Foods": "retail", "Health": "healthcare", "Insights": "software", "Labs": "software",
    "Learning": "education", "Legal": "legal", "Logistics": "logistics", "Media": "media",
    "Networks": "telecom", "Partners": "services", "Robotics": "manufacturing",
    "Security": "software", "Studio": "media", "Systems": "software", "Travel": "travel",
}  # fmt: skip
STRIPE_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
EMPLOYEES = {SMB: (5, 200), MID_MARKET: (200, 2000), ENTERPRISE_SEGMENT: (2000, 40000)}
STAFF = (Role.OPS, Role.FINANCE, Role.ENGINEERING, Role.ADMIN)  # username = role value


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    password: str


@dataclass
class DemoResult:
    """What ``demo_seed`` did: per kind of row, how many were created, updated or unchanged."""

    organization: Organization
    counts: dict[str, Counter] = field(default_factory=dict)
    logins: list[DemoLogin] = field(default_factory=list)
    skipped_users: list[str] = field(default_factory=list)  # existing users left alone

    def tally(self, kind: str, outcome: str) -> None:
        self.counts.setdefault(kind, Counter())[outcome] += 1

    def __str__(self) -> str:
        parts = []
        for kind, counter in self.counts.items():
            outcomes = ", ".join(f"{n} {o}" for o, n in sorted(counter.items()))
            parts.append(f"{sum(counter.values())} {kind} ({outcomes})")
        return "; ".join(parts)


def demo_customer_specs() -> list[CustomerSpec]:
    """The demo's customers: the named and internal accounts, then generated ones (pure)."""
    rng = random.Random(DEMO_SEED)
    taken = {spec.name for spec in NAMED_CUSTOMERS}
    names = [f"{p} {s}" for p in NAME_PREFIXES for s in NAME_SUFFIXES if f"{p} {s}" not in taken]
    generated = [_generated_customer(rng, name) for name in rng.sample(names, GENERATED_CUSTOMERS)]
    return [*NAMED_CUSTOMERS, *generated]


def _generated_customer(rng: random.Random, name: str) -> CustomerSpec:
    # Half uniform, half skewed to recent months: cohorts of a company growing ~3x.
    recent = rng.random() < 0.5
    age = int(rng.triangular(1, COHORT_DAYS, 1) if recent else rng.uniform(1, COHORT_DAYS))
    started_on = DEMO_ANCHOR - timedelta(days=age)
    plan = rng.choices((FREE, STARTER, PRO, ENTERPRISE), weights=(34, 42, 19, 5))[0]
    history = [(plan, started_on)]
    upgrade_to = {FREE: (STARTER, 90, 0.25), STARTER: (PRO, 120, 0.3), PRO: (ENTERPRISE, 200, 0.15)}
    if plan in upgrade_to:
        target, min_age, share = upgrade_to[plan]
        if age > min_age and rng.random() < share:
            history.append((target, started_on + timedelta(days=rng.randint(45, age - 30))))
    churned_on = None
    last_from = history[-1][1]
    if history[-1][0] != ENTERPRISE and (DEMO_ANCHOR - last_from).days > 60 and rng.random() < 0.12:
        churned_on = last_from + timedelta(days=rng.randint(30, (DEMO_ANCHOR - last_from).days))
    final = history[-1][0]
    if final == ENTERPRISE:
        segment = ENTERPRISE_SEGMENT
    elif final == PRO:
        segment = MID_MARKET if rng.random() < 0.8 else SMB
    elif final == STARTER:
        segment = SMB if rng.random() < 0.85 else MID_MARKET
    else:
        segment = SMB
    return CustomerSpec(
        name=name,
        segment=segment,
        region=rng.choices(("na", "eu", "apac"), weights=(55, 30, 15))[0],
        history=tuple(history),
        churned_on=churned_on,
        stripe_customer_id="cus_" + "".join(rng.choices(STRIPE_ID_ALPHABET, k=14)),
        metadata={
            "industry": NAME_SUFFIXES[name.split(" ", 1)[1]],
            "employees": rng.randint(*EMPLOYEES[segment]),
        },
    )


def _at(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _differs(instance, fields: dict[str, Any]) -> bool:
    return any(getattr(instance, name) != value for name, value in fields.items())


@transaction.atomic
def demo_seed(*, organization: Organization | None = None) -> DemoResult:
    """Create or bring up to date the demo organization (default: slug ``demo``).

    Idempotent: a second run writes nothing. Returns counts and the staff logins.
    """
    if organization is None:
        organization = Organization.objects.filter(slug=DEMO_SLUG).first()
        if organization is None:
            organization = services.organization_create(slug=DEMO_SLUG, name=DEMO_NAME)
    result = DemoResult(organization=organization)
    plans = _seed_plans(organization, result)
    features = _seed_features(organization, result)
    _seed_provider_keys(organization, features, result)
    _seed_customers(organization, plans, result)
    _seed_staff(organization, result)
    return result


def _seed_plans(organization: Organization, result: DemoResult) -> dict[str, Plan]:
    existing = {plan.code: plan for plan in Plan.objects.filter(organization=organization)}
    for spec in PLANS:
        fields = {
            "name": spec.name,
            "price": spec.price,
            "currency": "USD",
            "interval": Plan.Interval.MONTH,
            "is_free": spec.is_free,
            "is_trial": False,
            "stripe_price_ids": list(spec.stripe_price_ids),
            "is_active": True,
        }
        plan = existing.get(spec.code)
        if plan is None:
            plan = services.plan_create(organization=organization, code=spec.code, **fields)
            result.tally("plans", "created")
        elif _differs(plan, fields):
            plan = services.plan_update(plan=plan, **fields)
            result.tally("plans", "updated")
        else:
            result.tally("plans", "unchanged")
        existing[spec.code] = plan
    return existing


def _seed_features(organization: Organization, result: DemoResult) -> dict[str, Feature]:
    existing = {f.key: f for f in Feature.objects.filter(organization=organization)}
    for spec in FEATURES:
        fields = {
            "name": spec.name,
            "team": spec.team,
            "description": spec.description,
            "status": spec.status,
            "launched_on": spec.launched_on,
            "needs_review": False,
        }
        feature = existing.get(spec.key)
        if feature is None:
            feature = services.feature_create(organization=organization, key=spec.key, **fields)
            result.tally("features", "created")
        elif _differs(feature, fields):
            feature = services.feature_update(feature=feature, **fields)
            result.tally("features", "updated")
        else:
            result.tally("features", "unchanged")
        existing[spec.key] = feature
    return existing


def _seed_provider_keys(
    organization: Organization, features: dict[str, Feature], result: DemoResult
) -> None:
    existing = {
        (key.provider, key.key_id): key
        for key in ProviderKey.objects.filter(organization=organization)
    }
    for spec in PROVIDER_KEYS:
        fields = {
            "label": spec.label,
            "feature": features[spec.feature_key] if spec.feature_key else None,
            "team": spec.team,
            "environment": spec.environment,
            "status": ProviderKey.Status.ACTIVE,
        }
        key = existing.get((spec.provider, spec.key_id))
        if key is None:
            services.provider_key_create(
                organization=organization, provider=spec.provider, key_id=spec.key_id, **fields
            )
            result.tally("provider keys", "created")
        elif _differs(key, fields):
            services.provider_key_update(provider_key=key, **fields)
            result.tally("provider keys", "updated")
        else:
            result.tally("provider keys", "unchanged")


def _seed_customers(organization: Organization, plans: dict[str, Plan], result: DemoResult) -> None:
    # Two queries load everything a re-run compares against; only differences are written.
    existing = {c.external_id: c for c in Customer.objects.filter(organization=organization)}
    histories: dict[int, list[tuple[int, datetime, datetime | None]]] = {}
    for customer_id, plan_id, valid_from, valid_to in (
        CustomerPlan.objects.filter(organization=organization)
        .order_by("customer_id", "valid_from")
        .values_list("customer_id", "plan_id", "valid_from", "valid_to")
    ):
        histories.setdefault(customer_id, []).append((plan_id, valid_from, valid_to))

    for spec in demo_customer_specs():
        fields = spec.fields()
        customer = existing.get(spec.external_id)
        if customer is None:
            customer = services.customer_create(
                organization=organization, external_id=spec.external_id, **fields
            )
            result.tally("customers", "created")
        elif _differs(customer, fields):
            customer = services.customer_update(customer=customer, **fields)
            result.tally("customers", "updated")
        else:
            result.tally("customers", "unchanged")

        if histories.get(customer.pk, []) == _history_rows(spec, plans):
            result.tally("plan histories", "unchanged")
            continue
        outcome = "replaced" if customer.pk in histories else "created"
        services.customer_plan_history_replace(
            customer=customer,
            periods=[(plans[code], _at(day)) for code, day in spec.history],
            ended_at=_at(spec.churned_on) if spec.churned_on else None,
        )
        result.tally("plan histories", outcome)


def _history_rows(
    spec: CustomerSpec, plans: dict[str, Plan]
) -> list[tuple[int, datetime, datetime | None]]:
    """The spec's plan periods as ``(plan_id, valid_from, valid_to)`` rows, oldest first."""
    starts = [_at(day) for _, day in spec.history]
    ends = [*starts[1:], _at(spec.churned_on) if spec.churned_on else None]
    return [
        (plans[code].pk, start, end)
        for (code, _), start, end in zip(spec.history, starts, ends, strict=True)
    ]


def _seed_staff(organization: Organization, result: DemoResult) -> None:
    users = {u.username: u for u in User.objects.filter(username__in=[r.value for r in STAFF])}
    roles = dict(
        Membership.objects.filter(user__in=users.values(), organization=organization).values_list(
            "user_id", "role"
        )
    )
    elsewhere = set(
        Membership.objects.filter(user__in=users.values())
        .exclude(organization=organization)
        .values_list("user_id", flat=True)
    )
    for role in STAFF:
        username = role.value
        user = users.get(username)
        if user is None:
            services.staff_user_create(
                username=username,
                password=DEMO_PASSWORD,
                organization=organization,
                role=role,
                email=f"{username}@demo.example.com",
            )
            result.tally("staff users", "created")
        elif user.is_superuser or user.pk in elsewhere:
            # A real account that happens to share the name: never reset its password.
            result.skipped_users.append(username)
            continue
        else:
            changed = roles.get(user.pk) != role
            if changed:
                services.membership_set(user=user, organization=organization, role=role)
            if not (user.is_active and user.check_password(DEMO_PASSWORD)):
                user.is_active = True
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["is_active", "password"])
                changed = True
            result.tally("staff users", "updated" if changed else "unchanged")
        result.logins.append(DemoLogin(username=username, role=role.label, password=DEMO_PASSWORD))
