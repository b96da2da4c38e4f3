from django.db import migrations

# The review workflow's rules, held by the database so that no path around the
# services (queryset.update(), bulk_update, raw SQL, a future admin screen) breaks
# them (DESIGN §8, reliability §5):
#
# 1. Remediation items move only along the legal transitions and start as drafts;
#    their content is frozen once submitted; each lifecycle column changes only in
#    its own transition; items are never deleted (cancel them).
# 2. Maker-checker: an approval or rejection by the requester is refused, as is one
#    by a non-member or, for a pricing item, by a role other than finance or admin;
#    an item becomes approved only with enough approvals by others, rejected only
#    with a rejection.
# 3. The transition log, approvals and finding activity are append-only; the log
#    is a chain of legal transitions from creation, and at commit it ends at the
#    item's state (deferred constraint triggers), so it always replays to it.
#
# Errors use SQLSTATE 23000 (integrity_constraint_violation): Django raises
# IntegrityError, like the ledger's own guards (ingestion 0002).
FORWARD = r"""
CREATE FUNCTION findings_remediation_legal(from_state text, to_state text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT (from_state, to_state) IN (
        ('', 'draft'),
        ('draft', 'pending_approval'), ('draft', 'cancelled'),
        ('pending_approval', 'approved'), ('pending_approval', 'rejected'),
        ('pending_approval', 'cancelled'),
        ('approved', 'implemented'), ('approved', 'cancelled'),
        ('implemented', 'verified'))
$$;

CREATE FUNCTION findings_remediationitem_guard() RETURNS trigger AS $$
DECLARE
    approvals integer;
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'remediation item % cannot be deleted: cancel it instead', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;

    IF TG_OP = 'INSERT' THEN
        IF NEW.state <> 'draft' OR NEW.submitted_at IS NOT NULL OR NEW.decided_at IS NOT NULL
           OR NEW.implemented_at IS NOT NULL OR NEW.verified_at IS NOT NULL
           OR NEW.baseline_start IS NOT NULL OR NEW.baseline_end IS NOT NULL
           OR NEW.baseline_daily_cost IS NOT NULL OR NEW.verification_start IS NOT NULL
           OR NEW.verification_end IS NOT NULL OR NEW.verified_daily_cost IS NOT NULL
           OR NEW.realized_monthly_savings IS NOT NULL
        THEN
            RAISE EXCEPTION 'a remediation item starts as a draft (not %), with no lifecycle dates',
                NEW.state USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF NEW.needs_finance IS DISTINCT FROM
           (NEW.kind IN ('reprice_plan', 'restructure_plan', 'quota')) THEN
            RAISE EXCEPTION 'remediation item: needs_finance is true exactly for pricing kinds'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END IF;

    -- Who asked, for whom and when: never rewritten, not even in a draft.
    IF (NEW.organization_id, NEW.requested_by_id, NEW.created_at)
       IS DISTINCT FROM (OLD.organization_id, OLD.requested_by_id, OLD.created_at)
    THEN
        RAISE EXCEPTION 'remediation item %: its organization, requester and creation time never change',
            OLD.id USING ERRCODE = 'integrity_constraint_violation';
    END IF;

    -- Content: editable in a draft only; what approvers saw is what stays.
    IF OLD.state <> 'draft' AND
       (NEW.finding_id, NEW.kind, NEW.title, NEW.description, NEW.parameters,
        NEW.estimated_monthly_savings, NEW.needs_finance, NEW.approvals_required,
        NEW.customer_id, NEW.feature_id, NEW.plan_id, NEW.provider_key_id, NEW.provider,
        NEW.model, NEW.environment)
       IS DISTINCT FROM
       (OLD.finding_id, OLD.kind, OLD.title, OLD.description, OLD.parameters,
        OLD.estimated_monthly_savings, OLD.needs_finance, OLD.approvals_required,
        OLD.customer_id, OLD.feature_id, OLD.plan_id, OLD.provider_key_id, OLD.provider,
        OLD.model, OLD.environment)
    THEN
        RAISE EXCEPTION 'remediation item % is %: its content is immutable', OLD.id, OLD.state
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;

    -- Pricing kinds need finance: the flag follows the kind (findings.models.PRICING_KINDS).
    IF NEW.needs_finance IS DISTINCT FROM (NEW.kind IN ('reprice_plan', 'restructure_plan', 'quota'))
    THEN
        RAISE EXCEPTION 'remediation item %: needs_finance is true exactly for pricing kinds', NEW.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;

    IF NEW.state IS DISTINCT FROM OLD.state
       AND NOT findings_remediation_legal(OLD.state, NEW.state) THEN
        RAISE EXCEPTION 'remediation item %: % → % is not a legal transition',
            OLD.id, OLD.state, NEW.state USING ERRCODE = 'integrity_constraint_violation';
    END IF;

    -- Each lifecycle column is written by its own transition, once.
    IF NEW.submitted_at IS DISTINCT FROM OLD.submitted_at
       AND NOT (OLD.state = 'draft' AND NEW.state = 'pending_approval'
                AND NEW.submitted_at IS NOT NULL) THEN
        RAISE EXCEPTION 'remediation item %: submitted_at is set by the submission only', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.decided_at IS DISTINCT FROM OLD.decided_at
       AND NOT (OLD.state = 'pending_approval' AND NEW.state IN ('approved', 'rejected')
                AND NEW.decided_at IS NOT NULL) THEN
        RAISE EXCEPTION 'remediation item %: decided_at is set by the decision only', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.implemented_at IS DISTINCT FROM OLD.implemented_at
       AND NOT (OLD.state = 'approved' AND NEW.state = 'implemented'
                AND NEW.implemented_at IS NOT NULL) THEN
        RAISE EXCEPTION 'remediation item %: implemented_at is set by the implementation only',
            OLD.id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF (NEW.verified_at, NEW.baseline_start, NEW.baseline_end, NEW.baseline_daily_cost,
        NEW.verification_start, NEW.verification_end, NEW.verified_daily_cost,
        NEW.realized_monthly_savings)
       IS DISTINCT FROM
       (OLD.verified_at, OLD.baseline_start, OLD.baseline_end, OLD.baseline_daily_cost,
        OLD.verification_start, OLD.verification_end, OLD.verified_daily_cost,
        OLD.realized_monthly_savings)
       AND NOT (OLD.state = 'implemented' AND NEW.state = 'verified') THEN
        RAISE EXCEPTION 'remediation item %: the measured savings are set by the verification only',
            OLD.id USING ERRCODE = 'integrity_constraint_violation';
    END IF;

    IF NEW.state IS DISTINCT FROM OLD.state THEN
        IF NEW.state = 'pending_approval' AND NEW.submitted_at IS NULL
           OR NEW.state IN ('approved', 'rejected') AND NEW.decided_at IS NULL
           OR NEW.state = 'implemented' AND NEW.implemented_at IS NULL
           OR NEW.state = 'verified' AND (NEW.verified_at IS NULL
                                          OR NEW.realized_monthly_savings IS NULL) THEN
            RAISE EXCEPTION 'remediation item %: % needs its date (and figures)', OLD.id, NEW.state
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        -- A second approver above the organization's threshold, as submitted. The
        -- default must match FindingsPolicy.second_approval_threshold's.
        IF NEW.state = 'pending_approval' AND NEW.approvals_required < 2
           AND NEW.estimated_monthly_savings >= coalesce(
               (SELECT p.second_approval_threshold FROM findings_findingspolicy p
                WHERE p.organization_id = NEW.organization_id), 5000.00) THEN
            RAISE EXCEPTION 'remediation item % needs two approvers: its amount is at or above the threshold',
                NEW.id USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        -- Maker-checker: the decision rows come first, in the same transaction.
        IF NEW.state = 'approved' THEN
            SELECT count(*) INTO approvals FROM findings_remediationapproval a
            WHERE a.item_id = NEW.id AND a.decision = 'approve'
              AND a.approver_id <> NEW.requested_by_id;
            IF approvals < NEW.approvals_required THEN
                RAISE EXCEPTION 'remediation item % needs % approval(s) by someone other than its requester, has %',
                    NEW.id, NEW.approvals_required, approvals
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
        ELSIF NEW.state = 'rejected' AND NOT EXISTS (
            SELECT 1 FROM findings_remediationapproval a
            WHERE a.item_id = NEW.id AND a.decision = 'reject'
              AND a.approver_id <> NEW.requested_by_id) THEN
            RAISE EXCEPTION 'remediation item % needs a rejection by someone other than its requester',
                NEW.id USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER findings_remediationitem_guard
BEFORE INSERT OR UPDATE OR DELETE ON findings_remediationitem
FOR EACH ROW EXECUTE FUNCTION findings_remediationitem_guard();


CREATE FUNCTION findings_remediationapproval_guard() RETURNS trigger AS $$
DECLARE
    item record;
BEGIN
    SELECT i.state, i.requested_by_id, i.organization_id, i.needs_finance INTO item
    FROM findings_remediationitem i WHERE i.id = NEW.item_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'remediation item % does not exist', NEW.item_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.approver_id = item.requested_by_id THEN
        RAISE EXCEPTION 'maker-checker: user % requested remediation item % and cannot approve or reject it',
            NEW.approver_id, NEW.item_id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF item.state <> 'pending_approval' THEN
        RAISE EXCEPTION 'remediation item % is %, not pending approval', NEW.item_id, item.state
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.organization_id <> item.organization_id THEN
        RAISE EXCEPTION 'an approval belongs to its item''s organization'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.decision NOT IN ('approve', 'reject') THEN
        RAISE EXCEPTION 'an approval decides approve or reject, not %', NEW.decision
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM accounts_membership m
        WHERE m.user_id = NEW.approver_id AND m.organization_id = item.organization_id
          AND (NOT item.needs_finance OR m.role IN ('finance', 'admin'))
    ) THEN
        RAISE EXCEPTION 'user % may not decide remediation item %: a member is needed, finance or admin for pricing',
            NEW.approver_id, NEW.item_id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER findings_remediationapproval_guard
BEFORE INSERT ON findings_remediationapproval
FOR EACH ROW EXECUTE FUNCTION findings_remediationapproval_guard();


CREATE FUNCTION findings_remediationtransition_chain() RETURNS trigger AS $$
DECLARE
    last_state text;
    item_organization bigint;
BEGIN
    SELECT organization_id INTO item_organization
    FROM findings_remediationitem WHERE id = NEW.item_id;
    IF NEW.organization_id IS DISTINCT FROM item_organization THEN
        RAISE EXCEPTION 'a transition belongs to its item''s organization'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    SELECT to_state INTO last_state FROM findings_remediationtransition
    WHERE item_id = NEW.item_id ORDER BY id DESC LIMIT 1;
    IF NEW.from_state IS DISTINCT FROM coalesce(last_state, '') THEN
        RAISE EXCEPTION 'remediation item %: the log is at %, a transition from % cannot follow',
            NEW.item_id, coalesce(last_state, '(nothing)'), NEW.from_state
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NOT findings_remediation_legal(NEW.from_state, NEW.to_state) THEN
        RAISE EXCEPTION 'remediation item %: % → % is not a legal transition',
            NEW.item_id, NEW.from_state, NEW.to_state
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    -- Completeness (reliability R5.7): a reason, the amounts, and an actor unless the
    -- scheduler verified the savings.
    IF btrim(NEW.reason) = ''
       OR jsonb_typeof(NEW.amounts) IS DISTINCT FROM 'object'
       OR NOT (NEW.amounts ? 'estimated_monthly_savings' AND NEW.amounts ? 'realized_monthly_savings')
       OR NEW.actor_id IS NULL AND NEW.to_state <> 'verified' THEN
        RAISE EXCEPTION 'remediation item %: a transition records its actor, reason and amounts',
            NEW.item_id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER findings_remediationtransition_chain
BEFORE INSERT ON findings_remediationtransition
FOR EACH ROW EXECUTE FUNCTION findings_remediationtransition_chain();


CREATE FUNCTION findings_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER findings_remediationtransition_append_only
BEFORE UPDATE OR DELETE ON findings_remediationtransition
FOR EACH ROW EXECUTE FUNCTION findings_append_only();
CREATE TRIGGER findings_remediationapproval_append_only
BEFORE UPDATE OR DELETE ON findings_remediationapproval
FOR EACH ROW EXECUTE FUNCTION findings_append_only();
CREATE TRIGGER findings_findingactivity_append_only
BEFORE UPDATE OR DELETE ON findings_findingactivity
FOR EACH ROW EXECUTE FUNCTION findings_append_only();


-- At commit: the last logged transition of the item is its state. Together with the
-- chain check above, the log replays to the current state.
CREATE FUNCTION findings_remediation_logged() RETURNS trigger AS $$
DECLARE
    target bigint;
    current_state text;
    last_state text;
BEGIN
    IF TG_TABLE_NAME = 'findings_remediationitem' THEN
        target := NEW.id;
    ELSE
        target := NEW.item_id;
    END IF;
    SELECT state INTO current_state FROM findings_remediationitem WHERE id = target;
    SELECT to_state INTO last_state FROM findings_remediationtransition
    WHERE item_id = target ORDER BY id DESC LIMIT 1;
    IF last_state IS DISTINCT FROM current_state THEN
        RAISE EXCEPTION 'remediation item % is % but its log ends at %: every transition is logged',
            target, current_state, coalesce(last_state, '(nothing)')
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER findings_remediationitem_logged
AFTER INSERT OR UPDATE OF state ON findings_remediationitem
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION findings_remediation_logged();
CREATE CONSTRAINT TRIGGER findings_remediationtransition_logged
AFTER INSERT ON findings_remediationtransition
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION findings_remediation_logged();
"""

REVERSE = r"""
DROP TRIGGER IF EXISTS findings_remediationtransition_logged ON findings_remediationtransition;
DROP TRIGGER IF EXISTS findings_remediationitem_logged ON findings_remediationitem;
DROP FUNCTION IF EXISTS findings_remediation_logged();
DROP TRIGGER IF EXISTS findings_findingactivity_append_only ON findings_findingactivity;
DROP TRIGGER IF EXISTS findings_remediationapproval_append_only ON findings_remediationapproval;
DROP TRIGGER IF EXISTS findings_remediationtransition_append_only ON findings_remediationtransition;
DROP FUNCTION IF EXISTS findings_append_only();
DROP TRIGGER IF EXISTS findings_remediationtransition_chain ON findings_remediationtransition;
DROP FUNCTION IF EXISTS findings_remediationtransition_chain();
DROP TRIGGER IF EXISTS findings_remediationapproval_guard ON findings_remediationapproval;
DROP FUNCTION IF EXISTS findings_remediationapproval_guard();
DROP TRIGGER IF EXISTS findings_remediationitem_guard ON findings_remediationitem;
DROP FUNCTION IF EXISTS findings_remediationitem_guard();
DROP FUNCTION IF EXISTS findings_remediation_legal(text, text);
"""


class Migration(migrations.Migration):
    dependencies = [("findings", "0001_findings_workflow")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
