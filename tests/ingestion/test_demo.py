"""The demo's usage and revenue: idempotent through production services, every pattern there.

The usage is seeded once per module at ``SCALE`` (a tenth of the demo's volume; the planted
patterns keep a larger share) inside a transaction rolled back at the end; each test runs
in a savepoint within it. Thresholds are far below what the seed produces on any date. The
revenue is seeded likewise, at full scale (every paying customer billed), on the accounts
alone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from django.db import transaction
from django.db.models import Avg, Count, F, Q, Sum
from django.db.models.functions import ExtractHour
from django.utils import timezone

from accounts import demo as accounts_demo
from accounts.models import Customer, CustomerPlan, Feature, Organization
from ingestion.demo import revenue as revenue_demo
from ingestion.demo import usage as demo
from ingestion.models import (
    CostSource,
    CostStatus,
    ManualRevenueEntry,
    RevenueLine,
    StripeConnection,
    StripeCreditNote,
    StripeCustomer,
    StripeInvoice,
    StripeInvoiceLine,
    StripeRefund,
    SyncRun,
    UnmatchedStripeCustomer,
    UsageEvent,
)
from ingestion.models.stripe import DEFAULT_API_BASE
from ingestion.revenue_selectors import recognized_revenue_by_customer_month
from tests.ingestion.helpers import ledger_aggregate, rollup_rows

pytestmark = pytest.mark.django_db

SCALE = 0.1
PREMIUM = ("gpt-4.1", "o3", "claude-opus-4-5")


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """Seed accounts, then usage twice; yields the organization and both summaries."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            organization = accounts_demo.demo_seed().organization
            first = demo.demo_seed(organization=organization, scale=SCALE)
            rows_after_first = UsageEvent.objects.filter(organization=organization).count()
            second = demo.demo_seed(organization=organization, scale=SCALE)
            yield organization, first, second, rows_after_first
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture
def org(seeded):
    return seeded[0]


def events(org, **filters):
    return UsageEvent.objects.filter(organization=org, **filters)


def test_second_run_is_all_duplicates(seeded):
    organization, first, second, rows_after_first = seeded

    assert first.outcomes["accepted"] == rows_after_first > 5000
    assert first.outcomes["rejected"] == first.outcomes["conflict"] == 0
    assert second.outcomes["duplicate"] == rows_after_first
    assert set(second.outcomes) == {"duplicate"}
    assert UsageEvent.objects.filter(organization=organization).count() == rows_after_first
    assert second.cost == first.cost > 0
    assert organization.usage_accept_days == demo.ACCEPT_DAYS
    assert "accept window raised 35 → 100 days" in str(first)
    assert str(second).startswith(f"90 days {second.first_day}…{second.last_day}: 0 accepted")


def test_events_cover_ninety_full_days_ending_yesterday(org, seeded):
    first = seeded[1]
    assert (first.last_day - first.first_day).days == demo.DAYS - 1
    days = events(org).dates("timestamp", "day")
    assert days.first() == first.first_day and days.last() == first.last_day
    assert events(org).filter(event_id__startswith="demo-x0.1-").count() == events(org).count()


def test_rollups_equal_the_ledger(org):
    assert rollup_rows(org.pk) == ledger_aggregate(org.pk)


def test_model_overkill_premium_model_on_classification(org):
    """Pattern 1: gpt-4.1 emits ≤ 10 tokens where gpt-4o-mini scores as well."""
    classifier = events(org, feature__key="ai-onboarding", workflow="template-classifier")
    stats = {
        model: classifier.filter(model=model).aggregate(
            n=Count("id"), quality=Avg("quality_score"), cost=Sum("cost")
        )
        for model in ("gpt-4.1", "gpt-4o-mini")
    }
    assert not classifier.filter(output_tokens__gt=10).exists()
    assert stats["gpt-4.1"]["n"] >= 100 and stats["gpt-4o-mini"]["n"] >= 30
    assert abs(stats["gpt-4.1"]["quality"] - stats["gpt-4o-mini"]["quality"]) < Decimal("0.03")
    assert stats["gpt-4.1"]["cost"] > 5 * stats["gpt-4o-mini"]["cost"]


def test_nightly_digests_run_off_hours_without_batch(org):
    """Pattern 2: the scheduled digest is non-interactive, 01:00-04:00 UTC, never batched."""
    digests = events(org, feature__key="overnight-summaries", workflow="nightly-digest")
    assert digests.count() >= 300
    assert not digests.filter(batch=True).exists()
    hours = set(digests.annotate(hour=ExtractHour("timestamp")).values_list("hour", flat=True))
    assert hours == {1, 2, 3}


def test_summaries_send_large_prompts_without_caching(org):
    """Pattern 3: ≥ 8k-token prompts, under 1% of their input tokens cached."""
    summaries = events(org, feature__key="document-summarization", environment="production")
    totals = summaries.aggregate(
        n=Count("id"), large=Count("id", filter=Q(input_tokens__gte=8000)),
        cached=Sum("cached_input_tokens"), input=Sum("input_tokens"),
    )  # fmt: skip
    assert totals["large"] == totals["n"] >= 500
    assert totals["cached"] < Decimal("0.01") * totals["input"]


def test_spend_on_unmapped_and_retired_keys(org):
    """Pattern 4: untagged traffic on the unclaimed key and on the retired feature's key."""
    unmapped = events(org, api_key_id=demo.UNMAPPED_KEY, feature__isnull=True)
    assert unmapped.filter(provider_key__feature__isnull=True).count() == unmapped.count() >= 200
    assert set(unmapped.values_list("attribution_source", flat=True)) == {"unattributed"}
    assert unmapped.aggregate(cost=Sum("cost"))["cost"] > 2

    retired = events(org, api_key_id=demo.LEGACY_KEY)
    assert retired.count() >= 200
    assert set(retired.values_list("feature__status", "attribution_source")) == {
        (Feature.Status.RETIRED, "key_mapping")
    }
    assert retired.aggregate(cost=Sum("cost"))["cost"] > Decimal("0.5")


def test_staging_runs_on_premium_models(org):
    """Pattern 5: non-production traffic on gpt-4.1 and claude-opus-4-5."""
    staging = events(org, environment="staging", model__in=PREMIUM)
    assert staging.count() >= 150
    assert {"gpt-4.1", "claude-opus-4-5"} <= set(staging.values_list("model", flat=True))
    assert staging.aggregate(cost=Sum("cost"))["cost"] > 5
    assert not staging.filter(billable=True).exists()


def test_free_accounts_summarize_heavily(org):
    """Pattern 6: several Free-plan (non-internal) accounts with large summarization bills."""
    heavy = (
        events(org, plan__is_free=True, customer__is_internal=False,
               feature__key="document-summarization")
        .values("customer")
        .annotate(n=Count("id"), cost=Sum("cost"))
        .filter(n__gte=80, cost__gte=5)
    )  # fmt: skip
    assert heavy.count() >= 3


def test_heavy_enterprise_accounts_lead_on_cost(org):
    """Pattern 7: Helix Labs, Northwind AI and Nimbus Health are the top 3 Enterprise
    accounts by cost."""
    top = (
        events(org, customer__isnull=False, plan__code="enterprise")
        .values_list("customer__external_id", flat=True)
        .annotate(cost=Sum("cost"))
        .order_by(F("cost").desc(nulls_last=True))[:3]  # unpriced-only customers sum to NULL
    )
    assert set(demo.HEAVY) == set(top)
    plans = set(
        events(org, customer__external_id__in=demo.HEAVY).values_list("plan__code", flat=True)
    )
    assert plans == {"enterprise"}


def test_research_agent_runs_on_a_few_pro_accounts_and_users(org):
    """The margin-negative feature on Pro: a few analysts of a few Pro accounts run a
    multi-step agent on the premium model."""
    agent = events(org, feature__key="research-agent")
    assert agent.exists()
    assert set(agent.values_list("plan__code", flat=True)) == {"pro"}
    assert set(agent.values_list("model", flat=True)) == {demo.OPUS}
    accounts = set(agent.values_list("customer__external_id", flat=True))
    assert 1 <= len(accounts) <= demo.RESEARCH_ACCOUNTS
    users = set(agent.values_list("user_id", flat=True))
    assert len(users) <= demo.RESEARCH_ACCOUNTS * demo.RESEARCHERS
    first = agent.order_by("timestamp").values_list("timestamp", flat=True).first()
    assert first.date() >= demo.RESEARCH_LAUNCH


def test_unpriced_and_provider_reported_events(org):
    unpriced = events(org, cost_status=CostStatus.UNPRICED)
    assert unpriced.count() >= 20
    assert set(unpriced.values_list("model", flat=True)) == {"acme-finetune-7b"}
    assert not unpriced.filter(cost__isnull=False).exists()

    reported = events(org, cost_source=CostSource.PROVIDER_REPORTED)
    assert reported.count() >= 3
    assert not reported.filter(Q(cost__isnull=True) | Q(cost__lte=0)).exists()


def test_retries_errors_and_prompt_version_drift(org):
    assert events(org, attempt__gte=2).count() >= 10
    assert events(org, attempt=3).exists()
    assert events(org, status="error").count() >= 10

    by_version = dict(
        events(org, feature__key="chat-assistant", workflow="chat", environment="production")
        .values_list("prompt_version")
        .annotate(avg=Avg("input_tokens"))
    )
    ordered = [by_version[v] for v in sorted(by_version, key=lambda v: int(v[1:]))]
    assert len(ordered) >= 2
    assert any(after > 1.25 * before for before, after in pairwise(ordered))


def test_anthropic_cache_reads_and_writes_follow_the_ledger_convention(org):
    cached = events(org, provider="anthropic", cached_input_tokens__gt=0,
                    cache_write_tokens__gt=0)  # fmt: skip
    assert cached.count() >= 50
    assert not cached.filter(
        input_tokens__lt=F("cached_input_tokens") + F("cache_write_tokens")
    ).exists()
    assert events(org, provider="anthropic", model="claude-sonnet-4-5").count() >= 1000


def test_realistic_shape(org):
    """Users and regions per customer, weekday/weekend rhythm, batch used where it should be."""
    helix_users = events(org, customer__external_id="helix-labs").values("user_id").distinct()
    assert helix_users.count() >= 50
    assert events(org, user_id__startswith="u_").exists()
    assert events(org, metadata__region="eu").exists()
    chat = events(org, feature__key="chat-assistant", workflow="chat")
    weekday = chat.filter(timestamp__week_day__in=[2, 3, 4, 5, 6]).count() / 5
    weekend = chat.filter(timestamp__week_day__in=[1, 7]).count() / 2
    assert weekday > 1.8 * weekend
    assert events(org, workflow="reindex", batch=True).exists()


# --- revenue: Stripe through the real backfill, an offline contract ----------------------


@dataclass
class RevenueSeed:
    organization: Organization
    first: revenue_demo.RevenueSeedSummary
    second: revenue_demo.RevenueSeedSummary
    histories_before: list[tuple]
    histories_after: list[tuple]
    rows_after_first: dict[str, list[tuple]]
    rows_after_second: dict[str, list[tuple]]


def plan_histories(organization) -> list[tuple]:
    """Every plan period with its id and ``updated_at``: equal lists mean nothing was rewritten."""
    return list(
        CustomerPlan.objects.filter(organization=organization)
        .order_by("customer__external_id", "valid_from")
        .values_list("customer__external_id", "plan__code", "valid_from", "valid_to", "pk",
                     "updated_at")
    )  # fmt: skip


def revenue_rows(organization) -> dict[str, list[tuple]]:
    """The mirror, the revenue lines and the runs, with ids and ``updated_at``."""
    own = {"organization": organization}
    rows = {
        model.__name__: list(
            model.objects.filter(**own).order_by("pk").values_list("pk", "stripe_id", "updated_at")
        )
        for model in revenue_demo.MIRROR.values()
    }
    rows["lines"] = list(
        RevenueLine.objects.filter(**own).order_by("pk")
        .values_list("pk", "kind", "source_id", "customer_id", "billed", "recognized", "collected")
    )  # fmt: skip
    rows["manual"] = list(ManualRevenueEntry.objects.filter(**own).values_list("pk", "updated_at"))
    rows["runs"] = list(SyncRun.objects.filter(**own).values_list("pk", "status"))
    rows["connection"] = list(
        StripeConnection.objects.filter(**own).values_list("pk", "updated_at")
    )
    return rows


@pytest.fixture(scope="module")
def revenue_seeded(django_db_setup, django_db_blocker):
    """Seed accounts, then revenue twice at full scale (every paying customer billed)."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            organization = accounts_demo.demo_seed().organization
            before = plan_histories(organization)
            first = revenue_demo.demo_seed(organization=organization, scale=1)
            after, rows_after_first = plan_histories(organization), revenue_rows(organization)
            second = revenue_demo.demo_seed(organization=organization, scale=1)
            yield RevenueSeed(
                organization, first, second, before, after, rows_after_first,
                revenue_rows(organization),
            )  # fmt: skip
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def paying_since(organization, start: datetime) -> tuple[set[str], set[str]]:
    """(customers on a paid plan at some point after ``start``, customers never paying)."""
    periods = CustomerPlan.objects.filter(organization=organization, customer__is_internal=False)
    paying = set(
        periods.filter(plan__is_free=False)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=start))
        .values_list("customer__external_id", flat=True)
    )
    ever_paid = set(
        periods.filter(plan__is_free=False).values_list("customer__external_id", flat=True)
    )
    everyone = set(
        Customer.objects.filter(organization=organization).values_list("external_id", flat=True)
    )
    return paying, everyone - ever_paid


def test_revenue_for_paying_customers_and_none_for_free_or_internal_ones(revenue_seeded):
    org = revenue_seeded.organization
    paying, never_paid = paying_since(org, revenue_demo.billed_since(timezone.now().date()))
    invoiced = set(
        RevenueLine.objects.filter(
            organization=org, kind=RevenueLine.Kind.INVOICE_LINE
        ).values_list("customer__external_id", flat=True)
    )
    internal = set(
        Customer.objects.filter(organization=org, is_internal=True).values_list(
            "external_id", flat=True
        )
    )

    assert len(paying) > 120 and len(never_paid) > 40
    assert paying <= invoiced
    assert not invoiced & (never_paid | internal)
    stripe_customers = StripeCustomer.objects.filter(organization=org, customer__isnull=False)
    assert not stripe_customers.filter(customer__external_id__in=never_paid | internal).exists()
    # Matched by the metadata key, under the Stripe id Metron already knew.
    assert set(stripe_customers.values_list("matched_by", flat=True)) == {"metadata"}
    assert not stripe_customers.exclude(stripe_id=F("customer__stripe_customer_id")).exists()


def test_a_full_month_on_one_plan_recognizes_exactly_its_price(revenue_seeded):
    org = revenue_seeded.organization
    month = revenue_seeded.first.month
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
    adjusted = set(
        RevenueLine.objects.filter(organization=org)
        .filter(kind__in=[RevenueLine.Kind.CREDIT_NOTE, RevenueLine.Kind.MANUAL])
        .values_list("customer_id", flat=True)
    )
    whole_month = (
        CustomerPlan.objects.filter(organization=org, customer__is_internal=False,
                                    plan__is_free=False, valid_from__lte=start)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=end))
        .exclude(customer_id__in=adjusted)
        .values_list("customer_id", "plan__price")
    )  # fmt: skip
    recognized = recognized_revenue_by_customer_month(organization=org, start=month, end=end.date())

    assert len(whole_month) > 100
    for customer_id, price in whole_month:
        assert recognized[(customer_id, month)] == price
    assert revenue_seeded.first.recognized == sum(recognized.values()) > 0


def test_the_revenue_step_leaves_plan_histories_alone(revenue_seeded):
    """The backfill rebuilt them from the subscriptions: upgrades, churn and all."""
    assert revenue_seeded.histories_after == revenue_seeded.histories_before
    periods = Counter(external_id for external_id, *_ in revenue_seeded.histories_before)
    assert sum(1 for n in periods.values() if n > 1) >= 20
    assert any(valid_to for *_, valid_to, _, _ in revenue_seeded.histories_before)


def test_the_second_revenue_run_writes_nothing(revenue_seeded):
    first, second = revenue_seeded.first, revenue_seeded.second

    assert first.sync.startswith("backfill run #") and "succeeded" in first.sync
    assert second.sync == "mirror already current"
    assert revenue_seeded.rows_after_second == revenue_seeded.rows_after_first
    assert (second.lines, second.matched, second.recognized) == (
        first.lines,
        first.matched,
        first.recognized,
    )
    assert first.manual == {"created": 2} and second.manual == {"unchanged": 2}
    assert str(second).startswith(
        f"stripe from fixtures: mirror already current; {first.matched} customers matched, "
        f"1 unmatched; {first.lines:,} revenue lines; manual entries (2 unchanged); "
        f"recognized revenue {first.month:%B %Y} ${first.recognized:,.2f}; "
    )


def test_the_stripe_connection_is_left_disabled(revenue_seeded):
    connection = StripeConnection.objects.get(organization=revenue_seeded.organization)
    run = SyncRun.objects.get(organization=revenue_seeded.organization, kind="stripe_backfill")

    assert connection.status == StripeConnection.Status.DISABLED
    assert connection.api_base == DEFAULT_API_BASE
    assert connection.last_error == revenue_demo.STATUS_MESSAGE
    assert run.status == SyncRun.Status.SUCCEEDED


def test_the_stripe_only_customer_waits_in_the_unmatched_queue(revenue_seeded):
    org = revenue_seeded.organization
    queue = UnmatchedStripeCustomer.objects.filter(organization=org)
    lines = RevenueLine.objects.filter(
        organization=org, stripe_customer_id=revenue_demo.STRIPE_ONLY.stripe_id
    )

    assert list(queue.values_list("stripe_id", "name")) == [
        ("cus_DemoLarkspurFt", "Larkspur Freight")
    ]
    assert lines.filter(kind=RevenueLine.Kind.INVOICE_LINE).count() >= 3
    assert not lines.filter(customer__isnull=False).exists()


def test_billing_has_late_payments_refunds_and_credit_notes(revenue_seeded):
    org = revenue_seeded.organization
    invoices = StripeInvoice.objects.filter(organization=org)

    assert invoices.filter(status="paid").count() > 500
    assert set(invoices.values_list("status", flat=True)) <= {"paid", "open"}
    # Open only while a net-30 bank transfer is due.
    for finalized_at in invoices.filter(status="open").values_list("finalized_at", flat=True):
        assert timezone.now() - finalized_at < timedelta(days=31)
    assert StripeRefund.objects.filter(organization=org).exists()
    assert StripeCreditNote.objects.filter(organization=org).exists()
    assert RevenueLine.objects.filter(organization=org, kind=RevenueLine.Kind.REFUND).exists()
    # Upgrades mid-month: the unused time on the old plan is credited on the same invoice.
    assert StripeInvoiceLine.objects.filter(organization=org, proration=True,
                                            amount_minor__lt=0).exists()  # fmt: skip


def test_the_offline_enterprise_contract_is_recognized_daily(revenue_seeded):
    org = revenue_seeded.organization
    entries = ManualRevenueEntry.objects.filter(
        organization=org, customer__external_id="northwind-ai"
    )
    lines = RevenueLine.objects.filter(organization=org, kind=RevenueLine.Kind.MANUAL)

    assert sorted(entries.values_list("amount", flat=True)) == [Decimal("18000"), Decimal("21600")]
    assert lines.count() == 2
    assert lines.aggregate(total=Sum("recognized"))["total"] == Decimal("39600")
