"""A change stamp on the service catalogue, so that a POST can reuse the category and attributes it read before.

open311_catalogue_version holds one row: a number taken from a sequence by every statement that writes
routing_category or routing_categoryattribute (statement-level triggers, so the importers' SQL, the admin and a
TRUNCATE all count). A stamp is never given twice (a sequence is not rolled back), and the row itself is
transactional: a reader sees a new stamp exactly when it can see the change. open311.selectors keeps, per
process, the category a POST read together with the stamp read before it, and reuses it while the stamp is the
same. No row (after a TRUNCATE of this table by a test flush, say) means: nothing is reused.
"""
from django.db import migrations

SQL = r"""
CREATE SEQUENCE open311_catalogue_stamp;
CREATE TABLE open311_catalogue_version (
    id smallint PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO open311_catalogue_version VALUES (1, nextval('open311_catalogue_stamp'));

CREATE FUNCTION open311_catalogue_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO open311_catalogue_version AS v (id, version) VALUES (1, nextval('open311_catalogue_stamp'))
    ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version;
    RETURN NULL;
END $$;

CREATE TRIGGER open311_catalogue_changed AFTER INSERT OR UPDATE OR DELETE ON routing_category
    FOR EACH STATEMENT EXECUTE FUNCTION open311_catalogue_changed();
CREATE TRIGGER open311_catalogue_truncated AFTER TRUNCATE ON routing_category
    FOR EACH STATEMENT EXECUTE FUNCTION open311_catalogue_changed();
CREATE TRIGGER open311_catalogue_changed AFTER INSERT OR UPDATE OR DELETE ON routing_categoryattribute
    FOR EACH STATEMENT EXECUTE FUNCTION open311_catalogue_changed();
CREATE TRIGGER open311_catalogue_truncated AFTER TRUNCATE ON routing_categoryattribute
    FOR EACH STATEMENT EXECUTE FUNCTION open311_catalogue_changed();
"""

REVERSE_SQL = r"""
DROP TRIGGER IF EXISTS open311_catalogue_changed ON routing_category;
DROP TRIGGER IF EXISTS open311_catalogue_truncated ON routing_category;
DROP TRIGGER IF EXISTS open311_catalogue_changed ON routing_categoryattribute;
DROP TRIGGER IF EXISTS open311_catalogue_truncated ON routing_categoryattribute;
DROP FUNCTION IF EXISTS open311_catalogue_changed();
DROP TABLE IF EXISTS open311_catalogue_version;
DROP SEQUENCE IF EXISTS open311_catalogue_stamp;
"""


class Migration(migrations.Migration):
    dependencies = [("open311", "0001_initial"), ("routing", "0002_catalogue_import")]

    operations = [migrations.RunSQL(SQL, REVERSE_SQL)]
