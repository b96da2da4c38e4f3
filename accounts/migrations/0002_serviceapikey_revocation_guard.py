from django.db import migrations

# Revocation is irreversible even for queryset.update() and raw SQL, which
# bypass the model's own check.
FORWARD = """
CREATE FUNCTION accounts_serviceapikey_revocation_guard() RETURNS trigger AS $$
BEGIN
    IF OLD.revoked AND NOT NEW.revoked THEN
        RAISE EXCEPTION 'service API key % is revoked; revocation cannot be undone', OLD.prefix
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER accounts_serviceapikey_revocation_guard
BEFORE UPDATE ON accounts_serviceapikey
FOR EACH ROW EXECUTE FUNCTION accounts_serviceapikey_revocation_guard();
"""

REVERSE = """
DROP TRIGGER IF EXISTS accounts_serviceapikey_revocation_guard ON accounts_serviceapikey;
DROP FUNCTION IF EXISTS accounts_serviceapikey_revocation_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
