"""A change stamp on the holidays, so that every process can reuse the due dates it computed until they change.

routing_holiday_version holds one row: a number taken from a sequence by every statement that writes
routing_holiday (statement-level triggers: the admin, the catalogue import's SQL and a TRUNCATE all count). A stamp
is never given twice and the row is transactional, so a reader sees a new stamp exactly when it can see the change
(the same design as the service catalogue's stamp, open311 0002). routing.deadlines reads the stamp in the
statement that reads the holidays, and keeps each due date with it; complaints reads it again in the statement that
stores a complaint, and recomputes a reused due date whose stamp is no longer current. No row (after a TRUNCATE of
this table by a test flush) means: nothing is reused.
"""
from django.db import migrations

SQL = r"""
CREATE SEQUENCE routing_holiday_stamp;
CREATE TABLE routing_holiday_version (
    id smallint PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO routing_holiday_version VALUES (1, nextval('routing_holiday_stamp'));

CREATE FUNCTION routing_holidays_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO routing_holiday_version AS v (id, version) VALUES (1, nextval('routing_holiday_stamp'))
    ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version;
    RETURN NULL;
END $$;

CREATE TRIGGER routing_holidays_changed AFTER INSERT OR UPDATE OR DELETE ON routing_holiday
    FOR EACH STATEMENT EXECUTE FUNCTION routing_holidays_changed();
CREATE TRIGGER routing_holidays_truncated AFTER TRUNCATE ON routing_holiday
    FOR EACH STATEMENT EXECUTE FUNCTION routing_holidays_changed();
"""

REVERSE_SQL = r"""
DROP TRIGGER IF EXISTS routing_holidays_changed ON routing_holiday;
DROP TRIGGER IF EXISTS routing_holidays_truncated ON routing_holiday;
DROP FUNCTION IF EXISTS routing_holidays_changed();
DROP TABLE IF EXISTS routing_holiday_version;
DROP SEQUENCE IF EXISTS routing_holiday_stamp;
"""


class Migration(migrations.Migration):
    dependencies = [("routing", "0002_catalogue_import")]

    operations = [migrations.RunSQL(SQL, REVERSE_SQL)]
