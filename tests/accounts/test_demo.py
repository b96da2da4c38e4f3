from __future__ import annotations

import importlib.machinery
import sys
import types
from collections import Counter
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts import demo, services
from accounts.management.commands import seed_demo
from accounts.models import (
    Customer,
    CustomerPlan,
    Feature,
    Membership,
    Organization,
    Plan,
    ProviderKey,
    Role,
    User,
)
from accounts.selectors import customer_plan_at
from accounts.services import CUSTOMER_FIELDS

pytestmark = pytest.mark.django_db


def seed(**options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("seed_demo", stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def demo_org() -> Organization:
    return Organization.objects.get(slug="demo")


SPEC_KEY_IDS = [spec.key_id for spec in demo.PROVIDER_KEYS]


def dump(organization: Organization, *, with_ids: bool = True) -> dict[str, list[tuple]]:
    """Every seeded row by natural key with its fields; ids and ``updated_at`` prove no rewrite."""
    own = {"organization": organization}
    extra = ("pk", "updated_at") if with_ids else ()
    rows = {
        "plans": Plan.objects.filter(**own)
        .order_by("code")
        .values_list(
            "code", "name", "price", "currency", "interval", "is_free", "is_trial",
            "stripe_price_ids", "is_active", *extra,
        ),
        "customers": Customer.objects.filter(**own)
        .order_by("external_id")
        .values_list("external_id", *CUSTOMER_FIELDS, *extra),
        "plan periods": CustomerPlan.objects.filter(**own)
        .order_by("customer__external_id", "valid_from")
        .values_list("customer__external_id", "plan__code", "valid_from", "valid_to", *extra),
        "features": Feature.objects.filter(**own)
        .order_by("key")
        .values_list("key", "name", "team", "description", "status", "launched_on", *extra),
        # The seeded keys; keys discovered later by the provider sync are not the catalog's.
        "provider keys": ProviderKey.objects.filter(**own, key_id__in=SPEC_KEY_IDS)
        .order_by("provider", "key_id")
        .values_list(
            "provider", "key_id", "label", "feature__key", "team", "environment", "status", *extra
        ),
    }  # fmt: skip
    if with_ids:
        rows["staff"] = (
            Membership.objects.filter(**own)
            .order_by("user__username")
            .values_list("user__username", "user__password", "user__is_active", "role", *extra)
        )
    return {kind: list(queryset) for kind, queryset in rows.items()}


def printed_logins(out: str) -> list[list[str]]:
    """The rows of the logins table at the end of seed_demo's output."""
    lines = out.splitlines()
    header = lines.index("Staff logins (/admin/):")
    assert lines[header + 1].split() == ["username", "role", "password"]
    return [line.split() for line in lines[header + 2 :]]


def test_seed_demo_twice_leaves_identical_rows():
    seed()
    first = dump(demo_org())

    out, err = seed()

    assert dump(demo_org()) == first
    assert out.splitlines()[0] == (
        "accounts: 4 plans (4 unchanged); 7 features (7 unchanged); "
        "9 provider keys (9 unchanged); 200 customers (200 unchanged); "
        "200 plan histories (200 unchanged); 4 staff users (4 unchanged)"
    )
    assert err == ""


def test_seed_demo_is_the_same_whatever_the_database_holds(other_org):
    """A second organization seeded later gets the very same catalog: nothing depends on
    ids, time of day or what the database already holds."""
    seed()

    demo.demo_seed(organization=other_org)

    assert dump(other_org, with_ids=False) == dump(demo_org(), with_ids=False)


def test_seed_demo_restores_edited_rows():
    seed()
    beacon = Customer.objects.get(organization=demo_org(), external_id="beacon")
    services.customer_update(customer=beacon, segment="smb")
    services.customer_plan_assign(
        customer=beacon, plan=Plan.objects.get(organization=demo_org(), code="enterprise")
    )
    services.feature_update(
        feature=Feature.objects.get(organization=demo_org(), key="legacy-classifier"),
        status=Feature.Status.ACTIVE,
    )
    fresh = dump(demo_org(), with_ids=False)

    out, _ = seed()

    assert dump(demo_org(), with_ids=False) != fresh
    assert customer_plan_at(customer=beacon, at=timezone.now()).code == "pro"
    beacon.refresh_from_db()
    assert beacon.segment == "mid-market"
    assert Feature.objects.get(key="legacy-classifier").status == Feature.Status.RETIRED
    assert "200 customers (199 unchanged, 1 updated)" in out
    assert "200 plan histories (1 replaced, 199 unchanged)" in out
    assert "7 features (6 unchanged, 1 updated)" in out


def test_seed_demo_creates_200_varied_customers():
    seed()
    customers = Customer.objects.filter(organization=demo_org())

    assert customers.count() == 200
    assert customers.filter(is_internal=True).count() == 2
    assert 5 <= customers.filter(status=Customer.Status.CHURNED).count() <= 30
    assert set(customers.values_list("segment", flat=True)) == {"smb", "mid-market", "enterprise"}
    assert set(customers.values_list("region", flat=True)) == {"na", "eu", "apac"}
    cohorts = {day.strftime("%Y-%m") for day in customers.values_list("started_on", flat=True)}
    assert len(cohorts) >= 17  # monthly cohorts over about 18 months
    assert not customers.filter(name="").exists()
    assert customers.exclude(is_internal=True).filter(stripe_customer_id="").count() == 0


def test_named_customers_are_on_their_plans_today():
    seed()
    now = timezone.now()

    plans_today = {
        customer.name: customer_plan_at(customer=customer, at=now).name
        for customer in Customer.objects.filter(
            organization=demo_org(),
            name__in=["Helix Labs", "Northwind AI", "Nimbus Health", "Atlas Robotics", "Beacon"],
            status=Customer.Status.ACTIVE,
        )
    }

    assert plans_today == {
        "Helix Labs": "Enterprise",
        "Northwind AI": "Enterprise",
        "Nimbus Health": "Enterprise",
        "Atlas Robotics": "Pro",
        "Beacon": "Pro",
    }


def test_every_active_customer_has_a_plan_today_and_churned_ones_none():
    seed()
    now = timezone.now()

    for customer in Customer.objects.filter(organization=demo_org()):
        plan = customer_plan_at(customer=customer, at=now)
        assert (plan is None) == (customer.status == Customer.Status.CHURNED), customer


def test_plan_histories_include_upgrades():
    seed()
    atlas = Customer.objects.get(organization=demo_org(), external_id="atlas-robotics")

    history = list(
        CustomerPlan.objects.filter(customer=atlas)
        .order_by("valid_from")
        .values_list("plan__code", "valid_to")
    )

    assert [code for code, _ in history] == ["starter", "pro"]
    assert history[-1][1] is None
    upgraded = Counter(
        CustomerPlan.objects.filter(organization=demo_org()).values_list("customer", flat=True)
    )
    assert sum(1 for periods in upgraded.values() if periods > 1) >= 10


def test_plans_have_prices_and_stripe_ids():
    seed()

    plans = list(
        Plan.objects.filter(organization=demo_org())
        .order_by("price")
        .values_list("name", "price", "is_free")
    )

    assert [(name, str(price), free) for name, price, free in plans] == [
        ("Free", "0.00", True),
        ("Starter", "49.00", False),
        ("Pro", "499.00", False),
        ("Enterprise", "4999.00", False),
    ]
    assert all(
        ids and all(i.startswith("price_") for i in ids)
        for ids in Plan.objects.values_list("stripe_price_ids", flat=True)
    )


def test_features_include_one_retired():
    seed()
    features = Feature.objects.filter(organization=demo_org())

    assert set(features.values_list("key", flat=True)) == {
        "chat-assistant", "ai-onboarding", "semantic-search", "document-summarization",
        "overnight-summaries", "research-agent", "legacy-classifier",
    }  # fmt: skip
    assert list(features.filter(status=Feature.Status.RETIRED).values_list("key", flat=True)) == [
        "legacy-classifier"
    ]
    assert not features.filter(team="").exists()
    assert not features.filter(launched_on__isnull=True).exists()


def test_provider_keys_are_mapped_but_one():
    seed()
    all_keys = ProviderKey.objects.filter(organization=demo_org())
    keys = all_keys.filter(key_id__in=SPEC_KEY_IDS)

    assert keys.filter(feature__isnull=True).count() == 1
    # Keys the provider sync found with spend but no Metron traffic join the unmapped queue.
    discovered = all_keys.exclude(key_id__in=SPEC_KEY_IDS)
    assert discovered.exists()
    assert not discovered.filter(feature__isnull=False).exists()
    assert set(keys.values_list("provider", flat=True)) == {"openai", "anthropic"}
    assert set(keys.values_list("environment", flat=True)) == {"production", "staging"}
    for provider, key_id in keys.values_list("provider", "key_id"):
        assert key_id.startswith("key_" if provider == "openai" else "apikey_01")


def test_seed_demo_prints_one_working_login_per_role(client):
    out, _ = seed()

    logins = printed_logins(out)

    assert [row[0] for row in logins] == ["ops", "finance", "engineering", "admin"]
    for username, role_label, password in logins:
        assert client.login(username=username, password=password), username
        membership = Membership.objects.get(user__username=username)
        assert (membership.organization, Role(membership.role).label) == (demo_org(), role_label)


def test_seed_demo_leaves_a_real_account_with_a_demo_username_alone(org, staff_factory):
    admin = staff_factory(org, Role.ADMIN, username="admin")
    old_hash = admin.password

    out, err = seed()

    admin.refresh_from_db()
    assert admin.password == old_hash
    assert not Membership.objects.filter(user=admin, organization=demo_org()).exists()
    assert [row[0] for row in printed_logins(out)] == ["ops", "finance", "engineering"]
    assert err == "User 'admin' exists outside the demo and was left alone (no demo login).\n"


def test_seed_demo_resets_a_changed_demo_password(client):
    seed()
    ops = User.objects.get(username="ops")
    ops.set_password("something-else")
    ops.is_active = False
    ops.save()

    seed()

    assert client.login(username="ops", password=demo.DEMO_PASSWORD)


def test_seed_demo_refuses_production(settings):
    settings.PRODUCTION = True

    with pytest.raises(CommandError, match="Refusing to seed demo data"):
        seed()

    assert not Organization.objects.filter(slug="demo").exists()


def fake_demo_module(monkeypatch, name: str, calls: list) -> None:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.demo_seed = lambda *, organization: calls.append((name, organization)) or "3 things"
    monkeypatch.setitem(sys.modules, name, module)


def test_demo_contributors_are_later_apps_with_a_demo_module_in_order(monkeypatch):
    fake_demo_module(monkeypatch, "findings.demo", [])
    fake_demo_module(monkeypatch, "ingestion.demo", [])

    labels = [label for label, _ in seed_demo.demo_contributors()]

    assert [label for label in labels if label in {"ingestion", "findings"}] == [
        "ingestion",
        "findings",
    ]
    assert set(labels) <= {"ingestion", "economics", "findings", "scenarios"}


def test_seed_demo_runs_each_contributor_after_accounts(monkeypatch):
    calls = []
    fake_demo_module(monkeypatch, "scenarios.demo", calls)
    fake_demo_module(monkeypatch, "ingestion.demo", calls)

    out, _ = seed()

    assert calls == [("ingestion.demo", demo_org()), ("scenarios.demo", demo_org())]
    lines = out.splitlines()
    assert lines[0].startswith("accounts: ")
    assert [line for line in lines if line.startswith(("ingestion:", "scenarios:"))] == [
        "ingestion: 3 things",
        "scenarios: 3 things",
    ]


def test_demo_customer_specs_are_deterministic():
    specs = demo.demo_customer_specs()

    assert specs == demo.demo_customer_specs()
    assert len({spec.external_id for spec in specs}) == len(specs) == 200
