from django.db import migrations

# The ledger is append-only: what a caller reported (who, when, what, how much)
# never changes and rows are never deleted. Only what Metron derives may be
# rewritten, and only by its services: pricing (repricing runs) and attribution
# (customer/feature merges, plan resolution).
FORWARD = """
CREATE FUNCTION ingestion_usageevent_protect_facts() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'usage events are append-only; event % cannot be deleted', OLD.event_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF (NEW.organization_id, NEW.event_id, NEW.timestamp, NEW.received_at, NEW.payload_hash,
        NEW.user_id, NEW.workflow, NEW.prompt_version, NEW.provider, NEW.model, NEW.api_key_id,
        NEW.environment, NEW.input_tokens, NEW.output_tokens, NEW.cached_input_tokens,
        NEW.cache_write_tokens, NEW.reasoning_tokens, NEW.batch, NEW.service_tier, NEW.status,
        NEW.attempt, NEW.latency_ms, NEW.quality_score, NEW.metadata, NEW.reported_cost)
       IS DISTINCT FROM
       (OLD.organization_id, OLD.event_id, OLD.timestamp, OLD.received_at, OLD.payload_hash,
        OLD.user_id, OLD.workflow, OLD.prompt_version, OLD.provider, OLD.model, OLD.api_key_id,
        OLD.environment, OLD.input_tokens, OLD.output_tokens, OLD.cached_input_tokens,
        OLD.cache_write_tokens, OLD.reasoning_tokens, OLD.batch, OLD.service_tier, OLD.status,
        OLD.attempt, OLD.latency_ms, OLD.quality_score, OLD.metadata, OLD.reported_cost)
    THEN
        RAISE EXCEPTION 'usage event % is immutable: only its pricing and attribution may change',
            OLD.event_id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ingestion_usageevent_protect_facts
BEFORE UPDATE OR DELETE ON ingestion_usageevent
FOR EACH ROW EXECUTE FUNCTION ingestion_usageevent_protect_facts();
"""

REVERSE = """
DROP TRIGGER IF EXISTS ingestion_usageevent_protect_facts ON ingestion_usageevent;
DROP FUNCTION IF EXISTS ingestion_usageevent_protect_facts();
"""


class Migration(migrations.Migration):
    dependencies = [("ingestion", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
