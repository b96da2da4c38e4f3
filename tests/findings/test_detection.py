"""The detection service: findings upserted by fingerprint, activity, auto-resolve and reopen,
dismissed findings left alone, the waste floor, notifications after commit, failing rules."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from findings import tasks
from findings.detectors import model_overkill, rules
from findings.detectors.base import (
    Detected,
    fingerprint_make,
    thresholds_effective,
    thresholds_validate,
)
from findings.models import DetectorRun, Finding, FindingActivity, FindingsPolicy
from findings.selectors import findings_policy_get
from findings.services import detection
from findings.services.detection import detectors_run
from tests.findings.builders import NOW, WINDOW_END, WINDOW_START, feature, ingest, spread

pytestmark = pytest.mark.django_db

D = Decimal
OVERKILL = ["model_overkill"]


def plant_overkill(org, count=300):
    """gpt-4.1 labelling: 48.0096 USD a month saved on gpt-4.1-mini for 300 calls (see
    test_detectors), i.e. 0.160032 per call."""
    ingest(org, spread(count, feature="classify", model="gpt-4.1", input_tokens=100_000,
                       output_tokens=5))  # fmt: skip


@pytest.fixture
def classify(org):
    return feature(org, "classify")


def actions(finding):
    return list(
        FindingActivity.objects.filter(finding=finding).values_list(
            "action", "from_status", "to_status"
        )
    )


def set_policy(org, **fields):
    policy = findings_policy_get(organization=org)
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.save()
    return policy


def test_a_run_creates_a_finding_with_its_activity(org, classify):
    plant_overkill(org)

    run = detectors_run(organization=org, now=NOW)

    assert run.status == DetectorRun.Status.SUCCEEDED and run.error == ""
    assert (run.created, run.updated, run.resolved) == (1, 0, 0)
    assert (run.window_start, run.window_end) == (WINDOW_START, WINDOW_END)
    [finding] = Finding.objects.filter(organization=org)
    assert finding.kind == "model_overkill"
    assert finding.monthly_savings == D("48.01")  # 48.0096 rounded once, to cents
    assert finding.status == "open" and finding.confidence == "medium"
    assert finding.feature == classify and finding.model == "gpt-4.1"
    assert finding.fingerprint == fingerprint_make(
        "model_overkill", (f"feature={classify.pk}", "provider=openai", "model=gpt-4.1",
                           "environment=production"),
    )  # fmt: skip
    assert finding.first_seen_at == finding.last_seen_at == NOW
    assert finding.last_run == run
    assert (finding.window_start, finding.window_end) == (WINDOW_START, WINDOW_END)
    assert finding.evidence["alternative_model"] == "gpt-4.1-mini"
    assert finding.remediation_kind == "model_swap"
    assert actions(finding) == [("created", "", "open")]
    assert FindingActivity.objects.get(finding=finding).actor is None


def test_a_rerun_updates_the_same_finding_and_logs_material_changes(org, classify):
    plant_overkill(org)
    detectors_run(organization=org, now=NOW, kinds=OVERKILL)

    run = detectors_run(organization=org, now=NOW, kinds=OVERKILL)

    assert (run.created, run.updated, run.resolved) == (0, 1, 0)
    [finding] = Finding.objects.filter(organization=org)
    assert finding.last_run == run
    assert actions(finding) == [("created", "", "open")]  # same dollars: nothing to log

    plant_overkill(org)  # twice the traffic, twice the savings
    detectors_run(organization=org, now=NOW, kinds=OVERKILL)

    [finding] = Finding.objects.filter(organization=org)
    assert finding.monthly_savings == D("96.02")  # 2 × 48.0096 = 96.0192
    assert actions(finding)[-1] == ("updated", "open", "open")
    assert FindingActivity.objects.filter(finding=finding).last().details == {
        "from": "48.01",
        "to": "96.02",
    }


def test_a_cleared_condition_resolves_the_finding_and_its_return_reopens_it(org, classify):
    plant_overkill(org)
    detectors_run(organization=org, now=NOW, kinds=OVERKILL)
    policy = set_policy(org, thresholds={"model_overkill": {"min_requests": 1000}})

    run = detectors_run(organization=org, now=NOW, kinds=OVERKILL)

    [finding] = Finding.objects.filter(organization=org)
    assert run.resolved == 1
    assert finding.status == "resolved" and finding.auto_resolved is True
    assert actions(finding)[-1] == ("auto_resolved", "open", "resolved")

    policy.thresholds = {}
    policy.save()
    run = detectors_run(organization=org, now=NOW, kinds=OVERKILL)

    finding.refresh_from_db()
    assert (run.created, run.updated) == (0, 1)
    assert finding.status == "open" and finding.auto_resolved is False
    assert actions(finding)[-1] == ("reopened", "resolved", "open")


@pytest.mark.parametrize("status", ["acknowledged", "in_progress", "snoozed"])
def test_active_statuses_auto_resolve(org, classify, status):
    plant_overkill(org)
    detectors_run(organization=org, now=NOW, kinds=OVERKILL)
    Finding.objects.filter(organization=org).update(status=status, snoozed_until=date(2027, 1, 1))
    set_policy(org, thresholds={"model_overkill": {"min_requests": 1000}})

    detectors_run(organization=org, now=NOW, kinds=OVERKILL)

    [finding] = Finding.objects.filter(organization=org)
    assert finding.status == "resolved" and finding.snoozed_until is None
    assert actions(finding)[-1] == ("auto_resolved", status, "resolved")


def test_a_dismissed_finding_stays_dismissed(org, classify):
    plant_overkill(org)
    detectors_run(organization=org, now=NOW, kinds=OVERKILL)
    Finding.objects.filter(organization=org).update(status="dismissed", dismiss_reason="A/B runs")

    plant_overkill(org)
    run = detectors_run(organization=org, now=NOW, kinds=OVERKILL)

    [finding] = Finding.objects.filter(organization=org)
    assert run.created == 0
    assert finding.status == "dismissed" and finding.dismiss_reason == "A/B runs"
    assert finding.monthly_savings == D("96.02")  # its numbers stay current

    set_policy(org, thresholds={"model_overkill": {"min_requests": 10_000}})
    detectors_run(organization=org, now=NOW, kinds=OVERKILL)
    finding.refresh_from_db()
    assert finding.status == "dismissed"  # the condition cleared: nothing to resolve


def test_waste_below_the_policy_floor_is_not_raised_but_alerts_are(org, classify):
    set_policy(org, min_monthly_savings=D("50.00"),
               thresholds={"retry_overhead": {"min_monthly_cost": 0}})  # fmt: skip
    plant_overkill(org)  # 48.01 a month
    ingest(org, spread(20, feature="classify", model="gpt-4.1", input_tokens=100_000,
                       output_tokens=5, attempt=2))  # fmt: skip

    detectors_run(organization=org, now=NOW, kinds=["model_overkill", "retry_overhead"])

    # 320 calls now save 51.21 a month: but the retries alert is below 50 and still raised.
    kinds = dict(Finding.objects.filter(organization=org).values_list("kind", "monthly_savings"))
    assert kinds["model_overkill"] == D("51.21")  # 320 × 0.160032 = 51.21024
    # retries: 20 × (100,000 × 2 + 5 × 8) / 1e6 = 4.0008 a month at stake
    assert kinds["retry_overhead"] == D("4.00")

    set_policy(org, min_monthly_savings=D("60.00"))
    detectors_run(organization=org, now=NOW, kinds=OVERKILL)
    assert Finding.objects.get(kind="model_overkill").status == "resolved"


def test_new_findings_worth_enough_are_notified_after_commit(
    org, classify, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(detection, "notifications_enqueue", lambda **kw: sent.append(kw))
    set_policy(org, notify_min_savings=D("40.00"))
    plant_overkill(org)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        detectors_run(organization=org, now=NOW, kinds=OVERKILL)

    assert len(callbacks) == 1
    [notification] = sent
    finding = Finding.objects.get(organization=org)
    assert notification["organization"] == org
    assert notification["event_type"] == "finding.created"
    assert notification["payload"]["finding_id"] == finding.pk
    assert notification["payload"]["monthly_savings"] == "48.01"

    with django_capture_on_commit_callbacks(execute=True):
        detectors_run(organization=org, now=NOW, kinds=OVERKILL)
    assert len(sent) == 1  # an update is not news


def test_findings_below_the_notification_threshold_are_not_notified(
    org, classify, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(detection, "notifications_enqueue", lambda **kw: sent.append(kw))
    plant_overkill(org)  # 48.01 < 500.00 by default
    with django_capture_on_commit_callbacks(execute=True):
        detectors_run(organization=org, now=NOW, kinds=OVERKILL)
    assert sent == []


def test_a_failing_rule_fails_the_run_and_leaves_no_half_written_findings(
    org, classify, monkeypatch
):
    set_policy(org, min_monthly_savings=D("0.00"))
    plant_overkill(org)
    ingest(org, spread(120, feature="classify", model="gpt-4o", input_tokens=100_000,
                       output_tokens=5, customer_id="acme-1"))  # fmt: skip
    real_detect = model_overkill.detect

    def twice(ctx):  # the first candidate is written before the second one breaks the rule
        found = real_detect(ctx)
        return found + found[:1]

    monkeypatch.setattr(rules()["model_overkill"], "detect", twice)

    run = detectors_run(organization=org, now=NOW, kinds=["model_overkill", "orphaned_spend",
                                                            "prompt_caching_gap"])  # fmt: skip

    assert run.status == DetectorRun.Status.FAILED
    assert run.error.startswith("model_overkill: ValueError: rule model_overkill returned")
    assert not Finding.objects.filter(kind="model_overkill").exists()
    assert not FindingActivity.objects.filter(finding__kind="model_overkill").exists()
    # The other rules still applied.
    assert Finding.objects.filter(kind="prompt_caching_gap").exists()
    assert run.created == Finding.objects.count()


def test_a_raising_rule_is_reported(org, monkeypatch):
    def boom(ctx):
        raise RuntimeError("selector broke")

    monkeypatch.setattr(rules()["tenant_concentration"], "detect", boom)
    run = detectors_run(organization=org, now=NOW)
    assert run.status == "failed"
    assert run.error == "tenant_concentration: RuntimeError: selector broke"
    assert run.finished_at is not None


def test_kinds_choose_the_rules_and_unknown_kinds_are_refused(org, classify):
    plant_overkill(org)
    detectors_run(organization=org, now=NOW, kinds=["batch_eligibility"])
    assert not Finding.objects.exists()
    with pytest.raises(ValueError, match="Unknown finding kind"):
        detectors_run(organization=org, now=NOW, kinds=["nonsense"])


def test_a_rule_returning_another_kind_fails(org, monkeypatch):
    candidate = Detected(kind="budget", title="x", monthly_savings=D("1"), confidence="low",
                         confidence_reason="x", evidence={}, remediation="x")  # fmt: skip
    monkeypatch.setattr(rules()["retry_overhead"], "detect", lambda ctx: [candidate])
    run = detectors_run(organization=org, now=NOW, kinds=["retry_overhead"])
    assert run.status == "failed" and "returned a budget candidate" in run.error


def test_detected_refuses_floats_and_unknown_values():
    values = {"kind": "model_overkill", "title": "t", "confidence": "high",
              "confidence_reason": "r", "evidence": {}, "remediation": "r"}  # fmt: skip
    with pytest.raises(TypeError):
        Detected(monthly_savings=1.5, **values)
    with pytest.raises(ValueError):
        Detected(monthly_savings=D("1"), **{**values, "confidence": "certain"})
    with pytest.raises(ValueError):
        Detected(monthly_savings=D("1"), remediation_kind="pray", **values)


def test_invalid_threshold_overrides_are_reported_and_ignored(org, classify):
    defaults = model_overkill.DEFAULTS
    overrides = {"max_avg_output_tokens": "lots", "quality_tolerance": 0.05, "typo": 1}
    assert thresholds_validate(defaults, overrides) == [
        "max_avg_output_tokens: expected a whole number",
        "typo: unknown threshold (known: max_avg_output_tokens, min_quality_samples, "
        "min_requests, premium_models, quality_tolerance)",
    ]
    effective = thresholds_effective(defaults, overrides)
    assert effective["max_avg_output_tokens"] == 50  # the default stands
    assert effective["quality_tolerance"] == D("0.05")  # through str: exactly 0.05

    set_policy(org, thresholds={"model_overkill": overrides})
    plant_overkill(org)
    run = detectors_run(organization=org, now=NOW, kinds=OVERKILL)
    assert run.status == "succeeded" and run.created == 1


def test_findings_policy_get_creates_the_policy_once(org):
    policy = findings_policy_get(organization=org)
    assert findings_policy_get(organization=org) == policy
    assert FindingsPolicy.objects.filter(organization=org).count() == 1
    assert policy.min_monthly_savings == D("25.00")


def test_the_command_prints_the_prioritized_list(org, classify):
    ingest(org, spread(300, feature="classify", model="gpt-4.1", input_tokens=100_000,
                       output_tokens=5))  # fmt: skip
    out = StringIO()
    call_command("run_detectors", "acme", stdout=out)
    text = out.getvalue()
    assert re.search(r"^\d+ findings · \$[\d,]+\.\d\d/mo identified$", text, re.M), text
    assert "model_overkill" in text

    with pytest.raises(CommandError, match="No organization"):
        call_command("run_detectors", "nowhere")
    with pytest.raises(CommandError, match="Unknown finding kind"):
        call_command("run_detectors", "acme", "--kind", "nonsense")


def test_tasks_refresh_economics_then_run_the_detectors(org, other_org):
    [spec] = tasks.findings_schedules()
    assert spec.func == "findings.tasks.findings_refresh_all"
    assert spec.cron

    assert "new" in tasks.detectors_run_task(org.pk)
    results = tasks.findings_refresh_all()
    assert set(results) >= {org.pk, other_org.pk}
    assert DetectorRun.objects.filter(organization=other_org, trigger="schedule").exists()
