"""Budgets: the month's spend per scope, ok → warning → exceeded recorded once, the finding."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from findings.alerts import budgets as budget_rule
from findings.detectors.base import DetectionContext
from findings.models import (
    Budget,
    BudgetState,
    BudgetTransition,
    FindingKind,
    FindingsPolicy,
    NotificationDelivery,
    WebhookEndpoint,
)
from findings.services.budgets import budget_state_for, budgets_evaluate
from findings.tasks_budgets import budgets_evaluate_all
from ingestion.models import DailyUsage, UsageEvent
from tests.accounts.factories import (
    CustomerFactory,
    FeatureFactory,
    OrganizationFactory,
    PlanFactory,
    ProviderKeyFactory,
)

pytestmark = pytest.mark.django_db

D = Decimal
OK, WARNING, EXCEEDED = BudgetState.OK, BudgetState.WARNING, BudgetState.EXCEEDED
APRIL_10 = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
_ids = itertools.count(1)


def rollup(org, day, cost, *, customer=None, feature=None, plan=None, environment="production"):
    """One rollup row (a distinct model per row keeps the dimension tuples unique)."""
    return DailyUsage.objects.create(
        organization=org, day=day, customer=customer, feature=feature, plan=plan,
        provider="openai", model=f"gpt-4o-{next(_ids)}", environment=environment, batch=False,
        billable=environment == "production", requests=10, cost=D(cost),
    )  # fmt: skip


def key_event(org, key, timestamp, cost):
    """One priced ledger event sent with provider key ``key``."""
    n = next(_ids)
    return UsageEvent.objects.create(
        organization=org, event_id=f"evt-{n}", timestamp=timestamp, received_at=timestamp,
        payload_hash=f"{n:064d}", provider="openai", model="gpt-4o",
        provider_key=key, api_key_id=key.key_id if key else "", billable=True,
        cost=D(cost), cost_status="priced", attribution_source="key_mapping",
        attribution_confidence="high",
    )  # fmt: skip


def budget(org, name, limit, warning=80, **scope):
    kind = {"provider_key": "key"}.get(next(iter(scope), ""), next(iter(scope), "organization"))
    return Budget.objects.create(
        organization=org, name=name, scope=kind, monthly_limit=D(limit), warning_percent=warning,
        **scope,
    )  # fmt: skip


def history(b):
    return [
        (t.month, t.from_state, t.to_state, t.spend, t.limit)
        for t in BudgetTransition.objects.filter(budget=b).order_by("created_at", "pk")
    ]


@pytest.fixture
def catalog(org):
    plan = PlanFactory(organization=org, code="pro", name="Pro")
    summarize = FeatureFactory(organization=org, key="summarize", name="Summarize")
    chat = FeatureFactory(organization=org, key="chat", name="Chat")
    northwind = CustomerFactory(organization=org, external_id="cust_northwind", name="Northwind")
    globex = CustomerFactory(organization=org, external_id="cust_globex", name="Globex")
    key = ProviderKeyFactory(organization=org, key_id="key_batch_jobs", label="Batch jobs",
                             feature=summarize)  # fmt: skip
    other_key = ProviderKeyFactory(organization=org, key_id="key_other", feature=summarize)
    return {
        "plan": plan, "summarize": summarize, "chat": chat, "northwind": northwind,
        "globex": globex, "key": key, "other_key": other_key,
    }  # fmt: skip


def test_each_scope_sums_its_month(org, catalog):
    c = catalog
    rollup(org, date(2026, 4, 1), "40.00", customer=c["northwind"], feature=c["summarize"],
           plan=c["plan"])  # fmt: skip
    rollup(org, date(2026, 4, 2), "25.50", customer=c["globex"], feature=c["summarize"])
    # Staging traffic is money spent too.
    rollup(org, date(2026, 4, 30), "10.004", customer=c["northwind"], feature=c["chat"],
           plan=c["plan"], environment="staging")  # fmt: skip
    # Outside April, or another organization's: not counted.
    rollup(org, date(2026, 3, 31), "1000.00", customer=c["northwind"], feature=c["summarize"],
           plan=c["plan"])  # fmt: skip
    rollup(org, date(2026, 5, 1), "1000.00", customer=c["northwind"], feature=c["summarize"],
           plan=c["plan"])  # fmt: skip
    rollup(OrganizationFactory(slug="rival"), date(2026, 4, 1), "500.00")
    # The key's events: 3.333333333333 + 1.666666666667 = 5.00 in April.
    key_event(org, c["key"], datetime(2026, 4, 2, 10, 0, tzinfo=UTC), "3.333333333333")
    key_event(org, c["key"], datetime(2026, 4, 30, 23, 59, 59, tzinfo=UTC), "1.666666666667")
    key_event(org, c["key"], datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC), "100.00")
    key_event(org, c["key"], datetime(2026, 5, 1, 0, 0, tzinfo=UTC), "100.00")
    key_event(org, c["other_key"], datetime(2026, 4, 5, tzinfo=UTC), "100.00")
    budgets = {
        # 40.00 + 25.50 + 10.004 = 75.504 → 75.50, under 80 % of 100.
        "org": budget(org, "All AI", "100.00"),
        # 40.00 + 25.50 = 65.50 ≥ 80 % of 80 = 64.
        "feature": budget(org, "Summarize", "80.00", feature=c["summarize"]),
        # 40.00 + 10.004 = 50.004 → 50.00 ≥ 50.
        "customer": budget(org, "Northwind", "50.00", customer=c["northwind"]),
        "plan": budget(org, "Pro plan", "200.00", plan=c["plan"]),
        "key": budget(org, "Batch key", "5.00", warning=50, provider_key=c["key"]),
        "off": Budget.objects.create(organization=org, name="Off", scope="organization",
                                     monthly_limit=D("1.00"), active=False),
    }  # fmt: skip

    transitions = budgets_evaluate(organization=org, now=APRIL_10)

    spends = {}
    for name, b in budgets.items():
        b.refresh_from_db()
        spends[name] = (b.month_spend, b.state)
    assert spends == {
        "org": (D("75.50"), OK),
        "feature": (D("65.50"), WARNING),
        "customer": (D("50.00"), EXCEEDED),
        "plan": (D("50.00"), OK),
        "key": (D("5.00"), EXCEEDED),
        "off": (D("0.00"), OK),
    }
    assert budgets["org"].month == date(2026, 4, 1)
    assert budgets["org"].evaluated_at == APRIL_10
    assert budgets["off"].evaluated_at is None
    assert sorted((t.budget.name, t.from_state, t.to_state, t.spend) for t in transitions) == [
        ("Batch key", OK, EXCEEDED, D("5.00")),
        ("Northwind", OK, EXCEEDED, D("50.00")),
        ("Summarize", OK, WARNING, D("65.50")),
    ]


def test_ok_warning_exceeded_are_each_recorded_once(org):
    b = budget(org, "All AI", "100.00", warning=80)
    april = date(2026, 4, 1)

    rollup(org, date(2026, 4, 1), "50.00")
    assert budgets_evaluate(organization=org, now=APRIL_10) == []
    rollup(org, date(2026, 4, 2), "29.99")  # 79.99: still ok
    assert budgets_evaluate(organization=org, now=APRIL_10) == []
    rollup(org, date(2026, 4, 3), "0.01")  # 80.00: warning
    (first,) = budgets_evaluate(organization=org, now=APRIL_10)
    assert budgets_evaluate(organization=org, now=APRIL_10 + timedelta(hours=1)) == []
    rollup(org, date(2026, 4, 4), "19.99")  # 99.99: still warning
    assert budgets_evaluate(organization=org, now=APRIL_10) == []
    rollup(org, date(2026, 4, 5), "0.01")  # 100.00: exceeded
    (second,) = budgets_evaluate(organization=org, now=APRIL_10)
    rollup(org, date(2026, 4, 6), "50.00")
    assert budgets_evaluate(organization=org, now=APRIL_10) == []

    assert history(b) == [
        (april, OK, WARNING, D("80.00"), D("100.00")),
        (april, WARNING, EXCEEDED, D("100.00"), D("100.00")),
    ]
    assert (first.organization_id, second.organization_id) == (org.pk, org.pk)
    b.refresh_from_db()
    assert (b.state, b.month_spend) == (EXCEEDED, D("150.00"))


def test_a_jump_past_the_limit_is_one_transition_and_raising_the_limit_returns_to_ok(org):
    b = budget(org, "All AI", "100.00")
    rollup(org, date(2026, 4, 1), "120.00")

    budgets_evaluate(organization=org, now=APRIL_10)
    Budget.objects.filter(pk=b.pk).update(monthly_limit=D("500.00"))
    budgets_evaluate(organization=org, now=APRIL_10)

    april = date(2026, 4, 1)
    assert history(b) == [
        (april, OK, EXCEEDED, D("120.00"), D("100.00")),
        (april, EXCEEDED, OK, D("120.00"), D("500.00")),
    ]


def test_a_new_month_starts_at_ok(org):
    b = budget(org, "All AI", "100.00")
    rollup(org, date(2026, 4, 1), "120.00")
    budgets_evaluate(organization=org, now=APRIL_10)

    may_1 = datetime(2026, 5, 1, 0, 5, tzinfo=UTC)
    (reset,) = budgets_evaluate(organization=org, now=may_1)
    assert budgets_evaluate(organization=org, now=may_1 + timedelta(minutes=15)) == []
    rollup(org, date(2026, 5, 2), "85.00")
    budgets_evaluate(organization=org, now=datetime(2026, 5, 2, 12, tzinfo=UTC))

    may = date(2026, 5, 1)
    assert history(b) == [
        (date(2026, 4, 1), OK, EXCEEDED, D("120.00"), D("100.00")),
        (may, EXCEEDED, OK, D("0.00"), D("100.00")),
        (may, OK, WARNING, D("85.00"), D("100.00")),
    ]
    b.refresh_from_db()
    assert (b.month, b.state, b.month_spend) == (may, WARNING, D("85.00"))


def test_a_late_month_start_records_the_reset_and_the_new_state(org):
    b = budget(org, "All AI", "100.00")
    rollup(org, date(2026, 4, 1), "120.00")
    budgets_evaluate(organization=org, now=APRIL_10)
    rollup(org, date(2026, 5, 1), "130.00")

    transitions = budgets_evaluate(organization=org, now=datetime(2026, 5, 3, tzinfo=UTC))

    assert [(t.from_state, t.to_state, t.spend) for t in transitions] == [
        (EXCEEDED, OK, D("0.00")),
        (OK, EXCEEDED, D("130.00")),
    ]
    assert len(history(b)) == 3


def test_an_older_evaluation_leaves_a_newer_month_alone(org):
    b = budget(org, "All AI", "100.00")
    rollup(org, date(2026, 4, 1), "120.00")
    budgets_evaluate(organization=org, now=datetime(2026, 5, 1, 1, tzinfo=UTC))

    assert budgets_evaluate(organization=org, now=APRIL_10) == []
    b.refresh_from_db()
    assert (b.month, b.state, b.month_spend) == (date(2026, 5, 1), OK, D("0.00"))


def test_spend_is_compared_in_cents():
    assert budget_state_for(spend=D("79.994999"), limit=D("100"), warning_percent=80) == OK
    assert budget_state_for(spend=D("79.995"), limit=D("100"), warning_percent=80) == WARNING
    assert budget_state_for(spend=D("99.995"), limit=D("100"), warning_percent=80) == EXCEEDED


def test_each_transition_notifies_budget_transition(org, catalog):
    WebhookEndpoint.objects.create(organization=org, url="https://hooks.example.com/budgets",
                                   secret="s", event_types=["budget.transition"])  # fmt: skip
    FindingsPolicy.objects.create(organization=org, notify_emails="finance@acme.test")
    b = budget(org, "Northwind", "50.00", customer=catalog["northwind"])
    rollup(org, date(2026, 4, 1), "45.25", customer=catalog["northwind"])

    (transition,) = budgets_evaluate(organization=org, now=APRIL_10)

    deliveries = NotificationDelivery.objects.filter(event_type="budget.transition")
    assert sorted(deliveries.values_list("channel", flat=True)) == ["email", "webhook"]
    assert deliveries[0].payload == {
        "budget": {
            "id": b.pk, "name": "Northwind", "scope": "customer",
            "scope_label": "Customer: Northwind", "scope_id": catalog["northwind"].pk,
            "monthly_limit": "50.00", "warning_percent": 80,
        },
        "transition_id": transition.pk, "month": "2026-04-01", "from_state": "ok",
        "to_state": "warning", "spend": "45.25", "limit": "50.00", "percent": "90.5",
    }  # fmt: skip


def test_the_schedule_task_evaluates_every_organization_with_budgets(org):
    rival = OrganizationFactory(slug="rival")
    budget(org, "All AI", "10.00")
    budget(rival, "Rival AI", "10.00")
    rollup(org, datetime.now(UTC).date(), "12.00")

    result = budgets_evaluate_all()

    assert result == {org.pk: 1, rival.pk: 0}


@pytest.mark.django_db(transaction=True)
def test_concurrent_evaluations_record_each_transition_once(org):
    b = budget(org, "All AI", "100.00")
    rollup(org, date(2026, 4, 1), "90.00")
    barrier = threading.Barrier(4)
    made, errors = [], []

    def evaluate():
        try:
            barrier.wait(timeout=10)
            made.extend(budgets_evaluate(organization=org, now=APRIL_10))
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(made) == 1
    assert history(b) == [(date(2026, 4, 1), OK, WARNING, D("90.00"), D("100.00"))]


# --- the budget finding ---------------------------------------------------------------------


def detect(org, now):
    ctx = DetectionContext.build(organization=org, policy=FindingsPolicy(organization=org),
                                 now=now)  # fmt: skip
    return budget_rule.detect(ctx.for_rule(budget_rule))


def test_budgets_in_warning_or_exceeded_raise_a_budget_finding(org, catalog):
    c = catalog
    for day in range(1, 11):  # 25.00 a day, April 1 to 10: 250.00 so far
        rollup(org, date(2026, 4, day), "25.00", customer=c["northwind"], feature=c["summarize"],
               plan=c["plan"])  # fmt: skip
    org_budget = budget(org, "All AI", "300.00")  # 83.3 %: warning
    customer_budget = budget(org, "Northwind", "200.00", customer=c["northwind"])  # exceeded
    budget(org, "Pro plan", "1000.00", plan=c["plan"])  # 25 %: ok, no finding

    found = {d.evidence["budget_id"]: d for d in detect(org, APRIL_10)}

    assert set(found) == {org_budget.pk, customer_budget.pk}
    warning = found[org_budget.pk]
    assert warning.kind == FindingKind.BUDGET
    # Projected: 250.00 / 10 days × 30 days = 750.00; overspend 750.00 − 300.00.
    assert warning.monthly_savings == D("450.00")
    assert warning.confidence == "medium"
    assert (
        warning.title == "Budget “All AI” at 83.3 % of its limit: $250.00 of $300.00 in April 2026"
    )
    evidence = {k: v for k, v in warning.evidence.items() if k not in ("series", "formula")}
    assert evidence == {
        "budget_id": org_budget.pk, "budget": "All AI", "scope": "organization",
        "scope_label": "Organization", "state": "warning", "month": "2026-04-01",
        "spend": "250.00", "limit": "300.00", "percent": "83.3", "warning_percent": 80,
        "days_elapsed": 10, "days_in_month": 30, "projected_spend": "750.00",
        "projected_overspend": "450.00",
    }  # fmt: skip
    assert [(p["day"], D(p["cost"])) for p in warning.evidence["series"]] == [
        (f"2026-04-{day:02d}", D("25.00")) for day in range(1, 11)
    ]
    exceeded = found[customer_budget.pk]
    assert exceeded.monthly_savings == D("550.00")  # 750.00 − 200.00
    assert exceeded.confidence == "high"
    assert exceeded.title.startswith("Budget “Northwind” exceeded: $250.00 of $200.00")
    assert exceeded.scope.customer_id == c["northwind"].pk
    assert exceeded.remediation_kind == "quota"
    assert warning.fingerprint != exceeded.fingerprint


def test_the_budget_finding_keeps_its_fingerprint_and_clears_with_the_condition(org):
    b = budget(org, "All AI", "100.00")
    rollup(org, date(2026, 4, 1), "85.00")
    (as_warning,) = detect(org, APRIL_10)
    rollup(org, date(2026, 4, 2), "20.00")
    (as_exceeded,) = detect(org, APRIL_10)

    assert as_warning.fingerprint == as_exceeded.fingerprint
    assert (as_warning.evidence["state"], as_exceeded.evidence["state"]) == (WARNING, EXCEEDED)
    # The limit is raised: back to ok, no candidate, so the run resolves the finding.
    Budget.objects.filter(pk=b.pk).update(monthly_limit=D("1000.00"))
    assert detect(org, APRIL_10) == []
    # A budget in warning that stays under its limit at this pace puts nothing at stake.
    Budget.objects.filter(pk=b.pk).update(monthly_limit=D("130.00"))
    (slow,) = detect(org, datetime(2026, 4, 30, 12, tzinfo=UTC))
    assert (slow.evidence["state"], slow.monthly_savings) == (WARNING, D("0.00"))


def test_the_detection_run_raises_and_resolves_the_budget_finding(org):
    from findings.detectors import rules
    from findings.models import Finding
    from findings.services.detection import detectors_run

    if str(FindingKind.BUDGET) not in rules():
        pytest.skip("findings.alerts.budgets is not in findings.detectors.RULE_MODULES yet")
    b = budget(org, "All AI", "300.00")
    for day in range(1, 11):
        rollup(org, date(2026, 4, day), "25.00")

    detectors_run(organization=org, now=APRIL_10, kinds=[FindingKind.BUDGET])

    finding = Finding.objects.get(organization=org, kind=FindingKind.BUDGET)
    assert (finding.monthly_savings, finding.status) == (D("450.00"), "open")
    assert finding.evidence["budget_id"] == b.pk
    Budget.objects.filter(pk=b.pk).update(monthly_limit=D("1000.00"))
    detectors_run(organization=org, now=APRIL_10, kinds=[FindingKind.BUDGET])
    finding.refresh_from_db()
    assert (finding.status, finding.auto_resolved) == ("resolved", True)
