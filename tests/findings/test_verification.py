"""Verified savings: the scope's daily cost after implementation against the days before."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Role
from findings.models import RemediationState as S
from findings.models import RemediationTransition
from findings.services.errors import IllegalTransition, WorkflowPermissionDenied
from findings.services.remediation import remediation_implement
from findings.services.verification import (
    remediation_verify,
    remediations_verify_due,
    verification_windows,
)
from findings.tasks_workflow import (
    findings_unsnooze_due_task,
    remediations_verify_due_task,
    workflow_schedules,
)
from ingestion.models import ProviderUsageBucket
from ingestion.schedules import all_schedules
from tests.accounts.factories import (
    CustomerFactory,
    FeatureFactory,
    OrganizationFactory,
    ProviderKeyFactory,
)
from tests.findings.workflow_builders import (
    finding_create,
    item_in_state,
    member,
    policy_set,
    usage,
)

pytestmark = pytest.mark.django_db

D = Decimal
IMPLEMENTED_AT = datetime(2026, 3, 10, 16, 45, tzinfo=UTC)  # day D = March 10
DUE = datetime(2026, 3, 25, tzinfo=UTC)  # 14 days after: March 11 … 24 complete


@pytest.fixture
def people(org):
    return {
        "ops": member(org, Role.OPS, username="olivia"),
        "finance": member(org, Role.FINANCE, username="fiona"),
    }


def implemented(org, people, at: datetime = IMPLEMENTED_AT, **fields):
    item = item_in_state(
        S.APPROVED, requester=people["ops"], approvers=[people["finance"]], organization=org,
        **fields,
    )  # fmt: skip
    return remediation_implement(item=item, actor=people["ops"], now=at)


def days(start: date, count: int):
    return [start + timedelta(days=i) for i in range(count)]


def test_windows_are_the_full_days_before_and_after_the_implementation_day():
    windows = verification_windows(implemented_at=IMPLEMENTED_AT, days=14)

    assert (windows.baseline_start, windows.baseline_end) == (date(2026, 2, 24), date(2026, 3, 10))
    assert (windows.start, windows.end) == (date(2026, 3, 11), date(2026, 3, 25))
    assert windows.due_at == DUE
    assert windows.days == 14


def test_realized_savings_come_from_the_scope_only_and_sit_beside_the_estimate(org, people):
    customer, feature = CustomerFactory(organization=org), FeatureFactory(organization=org)
    finding = finding_create(org, customer=customer, feature=feature, monthly_savings=D("900.00"))
    item = implemented(org, people, finding=finding)
    scope = {"customer": customer, "feature": feature}
    for day in days(date(2026, 2, 24), 14):  # baseline: $31.00 a day
        usage(org, day, "30.000000000001", **scope)
        usage(
            org,
            day,
            "0.999999999999",
            **scope,
            model="gpt-4o",
            environment="production",
            batch=True,
        )
    for day in days(date(2026, 3, 11), 14):  # after: $3.50 a day
        usage(org, day, "3.50", **scope)
    # Outside the scope or the windows: ignored.
    usage(
        org, date(2026, 3, 12), "500", customer=CustomerFactory(organization=org), feature=feature
    )
    usage(org, date(2026, 3, 12), "500", **scope, model="gpt-4o-mini")
    usage(org, date(2026, 3, 12), "500", **scope, environment="staging")
    usage(org, date(2026, 3, 10), "500", **scope)  # the implementation day itself
    usage(org, date(2026, 2, 23), "500", **scope)  # before the baseline
    usage(org, date(2026, 3, 25), "500", **scope)  # after the window
    usage(OrganizationFactory(), date(2026, 3, 12), "500", model="gpt-4o")

    item = remediation_verify(item=item, actor=people["finance"], now=DUE)

    item.refresh_from_db()
    assert item.state == S.VERIFIED
    assert (item.baseline_daily_cost, item.verified_daily_cost) == (D("31.00"), D("3.50"))
    # (31.00 − 3.50) × 30, and the estimate kept beside it.
    assert (item.realized_monthly_savings, item.estimated_monthly_savings) == (
        D("825.00"),
        D("900.00"),
    )
    assert (item.baseline_start, item.baseline_end) == (date(2026, 2, 24), date(2026, 3, 10))
    assert (item.verification_start, item.verification_end) == (
        date(2026, 3, 11),
        date(2026, 3, 25),
    )
    assert item.verified_at == DUE
    transition = RemediationTransition.objects.filter(item=item).last()
    assert (transition.from_state, transition.to_state, transition.actor) == (
        "implemented", "verified", people["finance"])  # fmt: skip
    assert transition.amounts == {
        "estimated_monthly_savings": "900.00", "realized_monthly_savings": "825.00",
        "baseline_daily_cost": "31.00", "verified_daily_cost": "3.50",
    }  # fmt: skip
    assert transition.reason.startswith("Verified: realized $825.00/mo against $900.00/mo")


def test_days_without_usage_count_as_zero_and_rounding_happens_once(org, people):
    item = implemented(org, people, provider="openai", model="gpt-4o")
    usage(org, date(2026, 3, 1), "10.00")  # one baseline day of 14: $0.714285…/day
    usage(org, date(2026, 3, 20), "1.00")  # one day after: $0.071428…/day

    item = remediation_verify(item=item, now=DUE)

    # (10 − 1) / 14 × 30 = 19.2857… → 19.29, not (0.71 − 0.07) × 30 = 19.20.
    assert item.realized_monthly_savings == D("19.29")
    assert (item.baseline_daily_cost, item.verified_daily_cost) == (D("0.71"), D("0.07"))


def test_spend_that_went_up_is_negative_savings(org, people):
    item = implemented(org, people)
    usage(org, date(2026, 3, 1), "14.00")
    usage(org, date(2026, 3, 15), "28.00")

    assert remediation_verify(item=item, now=DUE).realized_monthly_savings == D("-30.00")


def test_a_provider_key_scope_reads_the_providers_own_usage_of_the_key(org, people):
    key = ProviderKeyFactory(organization=org)
    other_key = ProviderKeyFactory(organization=org)
    finding = finding_create(
        org, kind="orphaned_spend", provider_key=key, model="", remediation_kind="revoke_key"
    )
    item = implemented(org, people, finding=finding)

    def bucket(day: date, cost: str, provider_key=key, width="1d"):
        ProviderUsageBucket.objects.create(
            organization=org, provider="openai", bucket_width=width, provider_key=provider_key,
            bucket_start=datetime.combine(day, datetime.min.time(), tzinfo=UTC),
            api_key_id=provider_key.key_id, model="gpt-4o", estimated_cost=D(cost),
        )  # fmt: skip

    for day in days(date(2026, 2, 24), 14):
        bucket(day, "7.00")
    bucket(date(2026, 3, 12), "1000.00", provider_key=other_key)
    usage(org, date(2026, 3, 12), "1000.00")  # instrumented traffic: not the key's bill

    item = remediation_verify(item=item, now=DUE)

    assert (item.baseline_daily_cost, item.verified_daily_cost) == (D("7.00"), D("0.00"))
    assert item.realized_monthly_savings == D("210.00")


def test_not_before_the_window_is_over(org, people):
    item = implemented(org, people)

    with pytest.raises(IllegalTransition, match="ends on 2026-03-24") as caught:
        remediation_verify(item=item, now=DUE - timedelta(seconds=1))

    assert caught.value.code == "verification_not_due"
    assert remediation_verify(item=item, now=DUE).state == S.VERIFIED
    with pytest.raises(IllegalTransition, match="A verified item cannot be verified"):
        remediation_verify(item=item, now=DUE)


def test_the_window_length_is_the_policys(org, people):
    policy_set(org, verification_days=7)
    item = implemented(org, people)

    item = remediation_verify(item=item, now=datetime(2026, 3, 18, tzinfo=UTC))

    assert (item.baseline_start, item.verification_end) == (date(2026, 3, 3), date(2026, 3, 18))


def test_a_person_verifying_must_be_a_member(org, people):
    item = implemented(org, people)

    with pytest.raises(WorkflowPermissionDenied):
        remediation_verify(item=item, actor=member(OrganizationFactory(), Role.ADMIN), now=DUE)


def test_the_scheduler_verifies_due_items_once(org, people):
    due = implemented(org, people)
    later = implemented(org, people, at=IMPLEMENTED_AT + timedelta(days=5))
    usage(org, date(2026, 3, 1), "14.00")

    assert remediations_verify_due(now=DUE - timedelta(hours=1)) == []
    assert remediations_verify_due(now=DUE) == [due.pk]
    assert remediations_verify_due(now=DUE) == []  # idempotent
    assert remediations_verify_due(now=DUE + timedelta(days=5)) == [later.pk]

    transition = RemediationTransition.objects.filter(item=due).last()
    assert transition.actor is None
    assert transition.reason.startswith("Verified by the scheduled job: realized $30.00/mo")


def test_the_scheduler_skips_items_whose_window_is_still_open(org, people):
    policy_set(org, verification_days=30)
    item = implemented(org, people)

    assert remediations_verify_due(now=DUE) == []
    assert remediations_verify_due(now=datetime(2026, 4, 10, tzinfo=UTC)) == [item.pk]


def test_the_tasks_and_their_schedules(org, people):
    implemented(org, people, at=timezone.now() - timedelta(days=20))

    assert remediations_verify_due_task() == "1 remediation item(s) verified"
    assert findings_unsnooze_due_task() == "0 finding(s) reopened"
    names = {spec.name: spec for spec in workflow_schedules()}
    assert set(names) == {"findings unsnooze", "remediations verify"}
    assert {spec.func for spec in names.values()} <= {s.func for s in all_schedules()}
