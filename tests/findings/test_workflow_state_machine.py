"""Random walks through the remediation workflow never reach an illegal or unlogged state.

A Hypothesis state machine (reliability R5.2) drives the services with random actors
(the item's requester, ops, engineering, finance, an admin, a superuser member) over
{create, update, submit, approve, reject, implement, cancel, verify}, plus writes that go
around the services. A plain Python model of the rules predicts each outcome; after
every step the invariants are checked against the database:

- every item is in a legal state, the one the model expects;
- no approval was ever made by the item's requester;
- a submitted item's content never changes;
- each item's transition log is a chain of legal transitions that replays to its state;
- the deferred (commit-time) checks pass.

1,000 examples of up to 10 steps each, after a first item taken by the services to a
random depth (draft … implemented) so that short walks still reach every state; the
test asserts that every state and every kind of refusal was met. Derandomized: the same
walks every run (about 1.5 minutes), so a failure is reproducible and never flaky.

Each example runs in a savepoint rolled back at its end, so each starts clean; the
organization and its people are made once for all examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from accounts.models import Role
from findings.models import (
    PRICING_KINDS,
    RemediationApproval,
    RemediationItem,
    RemediationKind,
    RemediationState,
    RemediationTransition,
)
from findings.services.errors import (
    ApprovalPermissionDenied,
    ConcurrentDecision,
    IllegalTransition,
    ItemLocked,
    SelfApprovalForbidden,
    WorkflowError,
    WorkflowPermissionDenied,
)
from findings.services.remediation import (
    CANCELLABLE_STATES,
    DECIDED_STATES,
    REMEDIATION_TRANSITIONS,
    remediation_approve,
    remediation_cancel,
    remediation_create,
    remediation_implement,
    remediation_reject,
    remediation_submit,
    remediation_update,
)
from findings.services.verification import remediation_verify
from tests.findings.workflow_builders import T0, finding_create, member, policy_set

S = RemediationState
THRESHOLD = Decimal("1000.00")
MAX_ITEMS = 2
CONTENT = (
    "kind", "title", "description", "parameters", "estimated_monthly_savings", "requested_by_id",
    "needs_finance", "approvals_required", "finding_id", "customer_id", "feature_id", "plan_id",
    "provider_key_id", "provider", "model", "environment",
)  # fmt: skip
STATES = frozenset(RemediationState.values)

ROLES = {
    "ops": Role.OPS, "engineering": Role.ENGINEERING, "finance": Role.FINANCE,
    "admin": Role.ADMIN, "root": Role.FINANCE,
}  # fmt: skip
requesters = st.sampled_from(sorted(ROLES))
# "requester" is the item's own. Walks end in cancelled or rejected all too easily, so the
# actors likeliest to move an item forward are listed more than once in those rules.
actors = st.sampled_from(["requester", *sorted(ROLES)])
authors = st.sampled_from(["requester", "requester", "requester", *sorted(ROLES)])
approvers = st.sampled_from(["requester", *sorted(ROLES), "finance", "admin", "root"])
kinds = st.sampled_from(RemediationKind.values)
amounts = st.sampled_from(["0.00", "150.00", "999.99", "1000.00", "4200.00"])
slots = st.integers(0, MAX_ITEMS - 1)


@dataclass
class Expected:
    """The model's view of one item."""

    requester: str
    kind: str
    amount: Decimal
    state: str = S.DRAFT
    approvers: set[str] = field(default_factory=set)
    frozen: dict | None = None  # the content as submitted

    @property
    def needs_finance(self) -> bool:
        return self.kind in PRICING_KINDS

    @property
    def approvals_required(self) -> int:
        return 2 if self.amount >= THRESHOLD else 1


def build_machine(people: dict, finding, seen: dict) -> type[RuleBasedStateMachine]:
    class RemediationWorkflow(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            # One savepoint per example, rolled back in teardown: each starts clean.
            self.savepoint = transaction.atomic()
            self.savepoint.__enter__()
            self.ids: list[int] = []
            self.expected: dict[int, Expected] = {}

        def teardown(self):
            transaction.set_rollback(True)
            self.savepoint.__exit__(None, None, None)

        # --- helpers -------------------------------------------------------------------

        def pick(self, slot: int) -> tuple[RemediationItem, Expected]:
            pk = self.ids[slot % len(self.ids)]
            # A stale instance on purpose: services must re-read what they decide on.
            return RemediationItem(pk=pk), self.expected[pk]

        @staticmethod
        def who(actor: str, expected: Expected) -> str:
            return expected.requester if actor == "requester" else actor

        def freeze(self, item_pk: int) -> None:
            self.expected[item_pk].frozen = RemediationItem.objects.values(*CONTENT).get(pk=item_pk)

        @staticmethod
        def outcome(call, error: type[Exception] | None):
            """Run ``call``; it must succeed (error None) or raise exactly ``error``."""
            if error is None:
                return call()
            with pytest.raises(WorkflowError) as caught:
                call()
            assert type(caught.value) is error, (caught.value, error)
            seen["refusals"].add(error)
            return None

        # --- rules ---------------------------------------------------------------------

        @initialize(
            requester=requesters, kind=kinds, amount=amounts, from_finding=st.booleans(),
            start=st.sampled_from([S.DRAFT, S.PENDING_APPROVAL, S.APPROVED, S.IMPLEMENTED]),
        )  # fmt: skip
        def first(self, requester, kind, amount, from_finding, start):
            """The first item, taken by the services to ``start``: walks begin at any depth."""
            self.create(requester, kind, amount, from_finding)
            pk, expected = self.ids[0], self.expected[self.ids[0]]
            if start == S.DRAFT:
                return
            remediation_submit(item=RemediationItem(pk=pk), actor=people[requester])
            expected.state = S.PENDING_APPROVAL
            self.freeze(pk)
            if start == S.PENDING_APPROVAL:
                return
            others = [name for name in ("finance", "admin", "root") if name != requester]
            for name in others[: expected.approvals_required]:
                remediation_approve(item=RemediationItem(pk=pk), actor=people[name], now=T0)
                expected.approvers.add(name)
            expected.state = S.APPROVED
            if start == S.APPROVED:
                return
            remediation_implement(item=RemediationItem(pk=pk), actor=people["ops"], now=T0)
            expected.state = S.IMPLEMENTED

        @precondition(lambda self: len(self.ids) < MAX_ITEMS)
        @rule(requester=requesters, kind=kinds, amount=amounts, from_finding=st.booleans())
        def create(self, requester, kind, amount, from_finding):
            item = remediation_create(
                actor=people[requester], organization=finding.organization,
                finding=finding if from_finding else None, kind=kind,
                title=f"{kind} by {requester}", estimated_monthly_savings=Decimal(amount),
            )  # fmt: skip
            self.ids.append(item.pk)
            expected = Expected(requester=requester, kind=kind, amount=Decimal(amount))
            self.expected[item.pk] = expected
            assert item.needs_finance is expected.needs_finance
            assert item.approvals_required == expected.approvals_required

        @precondition(lambda self: self.ids)
        @rule(slot=slots, actor=authors, kind=kinds, amount=amounts)
        def update(self, slot, actor, kind, amount):
            item, expected = self.pick(slot)
            actor = self.who(actor, expected)
            error = (
                ItemLocked if expected.state != S.DRAFT
                else WorkflowPermissionDenied if actor != expected.requester
                else None
            )  # fmt: skip
            call = lambda: remediation_update(  # noqa: E731
                item=item, actor=people[actor], kind=kind, estimated_monthly_savings=amount,
                title=f"{kind} (edited)",
            )  # fmt: skip
            if self.outcome(call, error) is not None:
                expected.kind, expected.amount = kind, Decimal(amount)

        @precondition(lambda self: self.ids)
        @rule(slot=slots, actor=authors)
        def submit(self, slot, actor):
            item, expected = self.pick(slot)
            actor = self.who(actor, expected)
            error = (
                IllegalTransition if expected.state != S.DRAFT
                else WorkflowPermissionDenied if actor != expected.requester
                else None
            )  # fmt: skip
            if self.outcome(lambda: remediation_submit(item=item, actor=people[actor]), error):
                expected.state = S.PENDING_APPROVAL
                self.freeze(item.pk)

        def decision_error(self, expected: Expected, actor: str, approving: bool):
            allowed_roles = {Role.FINANCE, Role.ADMIN} if expected.needs_finance else set(Role)
            if expected.state in DECIDED_STATES:
                return ConcurrentDecision
            if expected.state != S.PENDING_APPROVAL:
                return IllegalTransition
            if actor == expected.requester:
                return SelfApprovalForbidden
            if ROLES[actor] not in allowed_roles:
                return ApprovalPermissionDenied
            if actor in expected.approvers:
                return ConcurrentDecision
            return None

        @precondition(lambda self: self.ids)
        @rule(slot=slots, actor=approvers)
        def approve(self, slot, actor):
            item, expected = self.pick(slot)
            actor = self.who(actor, expected)
            error = self.decision_error(expected, actor, approving=True)
            call = lambda: remediation_approve(item=item, actor=people[actor], now=T0)  # noqa: E731
            if self.outcome(call, error):
                expected.approvers.add(actor)
                if len(expected.approvers) >= expected.approvals_required:
                    expected.state = S.APPROVED

        @precondition(lambda self: self.ids)
        @rule(slot=slots, actor=actors)
        def reject(self, slot, actor):
            item, expected = self.pick(slot)
            actor = self.who(actor, expected)
            error = self.decision_error(expected, actor, approving=False)
            call = lambda: remediation_reject(item=item, actor=people[actor], reason="No")  # noqa: E731
            if self.outcome(call, error):
                expected.state = S.REJECTED

        @precondition(lambda self: self.ids)
        @rule(slot=slots, actor=actors)
        def implement(self, slot, actor):
            item, expected = self.pick(slot)
            actor = self.who(actor, expected)
            error = IllegalTransition if expected.state != S.APPROVED else None
            call = lambda: remediation_implement(item=item, actor=people[actor], now=T0)  # noqa: E731
            if self.outcome(call, error):
                expected.state = S.IMPLEMENTED

        @precondition(lambda self: self.ids)
        @rule(slot=slots, actor=actors)
        def cancel(self, slot, actor):
            item, expected = self.pick(slot)
            actor = self.who(actor, expected)
            error = (
                IllegalTransition if expected.state not in CANCELLABLE_STATES
                else WorkflowPermissionDenied
                if actor != expected.requester and ROLES[actor] != Role.ADMIN
                else None
            )  # fmt: skip
            call = lambda: remediation_cancel(item=item, actor=people[actor], reason="Stop")  # noqa: E731
            if self.outcome(call, error):
                if expected.state == S.DRAFT:
                    self.freeze(item.pk)
                expected.state = S.CANCELLED

        @precondition(lambda self: self.ids)
        @rule(slot=slots, actor=actors)
        def verify(self, slot, actor):
            item, expected = self.pick(slot)
            actor = self.who(actor, expected)
            error = IllegalTransition if expected.state != S.IMPLEMENTED else None
            call = lambda: remediation_verify(  # noqa: E731
                item=item, actor=people[actor], now=T0 + timedelta(days=60)
            )
            if self.outcome(call, error):
                expected.state = S.VERIFIED

        @precondition(lambda self: any(e.state != S.DRAFT for e in self.expected.values()))
        @rule(slot=slots, jump=st.sampled_from(sorted(STATES)))
        def tamper(self, slot, jump):
            """Writes around the services: a content edit and a state jump, both refused."""
            submitted = [pk for pk in self.ids if self.expected[pk].state != S.DRAFT]
            pk = submitted[slot % len(submitted)]
            with pytest.raises(IntegrityError), transaction.atomic():
                RemediationItem.objects.filter(pk=pk).update(title="tampered")
            state = self.expected[pk].state
            if jump != state and (state, jump) not in REMEDIATION_TRANSITIONS:
                with (
                    pytest.raises(IntegrityError),
                    transaction.atomic(),
                    connection.cursor() as cursor,
                ):
                    cursor.execute(
                        "UPDATE findings_remediationitem SET state = %s WHERE id = %s",
                        [jump, pk],
                    )

        # --- invariants (three round trips per step: the walk runs 1,000 times) -------

        @invariant()
        def every_rule_holds(self):
            self_approved = RemediationApproval.objects.filter(
                item=OuterRef("pk"), approver=OuterRef("requested_by")
            )
            rows = {
                row.pop("pk"): row
                for row in RemediationItem.objects.filter(pk__in=self.ids)
                .annotate(self_approved=Exists(self_approved))
                .values("pk", "state", "self_approved", *CONTENT)
            }
            # Legal states, the ones the model expects, and no approval by a requester.
            assert {pk: row.pop("state") for pk, row in rows.items()} == {
                pk: self.expected[pk].state for pk in self.ids
            }
            assert not any(row.pop("self_approved") for row in rows.values())
            # Content as submitted, for every item past draft.
            for pk, expected in self.expected.items():
                if expected.frozen is not None:
                    assert rows[pk] == expected.frozen
            # The log is a chain of legal transitions that replays to each state.
            replayed = dict.fromkeys(self.ids, "")
            log = RemediationTransition.objects.filter(item_id__in=self.ids).order_by("id")
            for item_id, source, target in log.values_list("item_id", "from_state", "to_state"):
                assert source == replayed[item_id]
                assert (source, target) in REMEDIATION_TRANSITIONS
                replayed[item_id] = target
            assert replayed == {pk: self.expected[pk].state for pk in self.ids}
            seen["states"].update(replayed.values())
            # And what the database checks at commit holds now.
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED")

    return RemediationWorkflow


@pytest.mark.django_db
def test_random_walks_keep_every_rule(org):
    people = {name: member(org, role, username=f"sm-{name}") for name, role in ROLES.items()}
    people["root"].is_superuser = True
    people["root"].save(update_fields=["is_superuser"])
    policy_set(org, second_approval_threshold=THRESHOLD)
    finding = finding_create(org)
    seen: dict[str, set] = {"states": set(), "refusals": set()}

    run_state_machine_as_test(
        build_machine(people, finding, seen),
        settings=settings(
            max_examples=1000,
            stateful_step_count=10,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),  # fmt: skip
    )

    # The walks went everywhere: every state reached, every kind of refusal met.
    assert seen["states"] == STATES
    assert seen["refusals"] == {
        ApprovalPermissionDenied, ConcurrentDecision, IllegalTransition, ItemLocked,
        SelfApprovalForbidden, WorkflowPermissionDenied,
    }  # fmt: skip
