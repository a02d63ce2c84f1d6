"""Refuse, at commit, any journal entry whose postings do not balance (or that has none, or mixes currencies).

A DEFERRABLE INITIALLY DEFERRED constraint trigger checks each entry touched by the transaction when it
commits, so an entry may be written row by row (entry, then postings) and is judged whole. This holds for
every writer, raw SQL included, not just `ledger.post_entry`.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION fares_check_entry_balanced() RETURNS trigger AS $$
DECLARE
    target uuid;
    posting_count integer;
    debits bigint;
    credits bigint;
    currencies integer;
BEGIN
    IF TG_TABLE_NAME = 'fares_journalentry' THEN
        target := NEW.id;
    ELSE
        target := NEW.entry_id;
    END IF;
    SELECT COUNT(p.id), COALESCE(SUM(p.debit_minor), 0), COALESCE(SUM(p.credit_minor), 0),
           COUNT(DISTINCT a.currency)
      INTO posting_count, debits, credits, currencies
      FROM fares_posting p JOIN fares_ledgeraccount a ON a.id = p.account_id
     WHERE p.entry_id = target;
    IF posting_count = 0 THEN
        RAISE EXCEPTION 'journal entry % has no postings', target USING ERRCODE = 'check_violation';
    END IF;
    IF debits <> credits THEN
        RAISE EXCEPTION 'journal entry % does not balance: debits % <> credits %', target, debits, credits
            USING ERRCODE = 'check_violation';
    END IF;
    IF currencies > 1 THEN
        RAISE EXCEPTION 'journal entry % mixes % currencies', target, currencies USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER fares_journalentry_balanced_at_commit
    AFTER INSERT ON fares_journalentry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION fares_check_entry_balanced();

CREATE CONSTRAINT TRIGGER fares_posting_balanced_at_commit
    AFTER INSERT ON fares_posting
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION fares_check_entry_balanced();
"""

DROP = """
DROP TRIGGER IF EXISTS fares_posting_balanced_at_commit ON fares_posting;
DROP TRIGGER IF EXISTS fares_journalentry_balanced_at_commit ON fares_journalentry;
DROP FUNCTION IF EXISTS fares_check_entry_balanced();
"""


class Migration(migrations.Migration):
    dependencies = [("fares", "0003_payment_capture")]

    operations = [migrations.RunSQL(CREATE, DROP)]
