"""The working weeks share the holidays' change stamp (0003_holiday_version): a due date computed under an old
working week is recomputed on every app server, as one computed under old holidays is (routing.deadlines)."""
from django.db import migrations

SQL = r"""
CREATE TRIGGER routing_working_weeks_changed AFTER INSERT OR UPDATE OR DELETE ON routing_workingweek
    FOR EACH STATEMENT EXECUTE FUNCTION routing_holidays_changed();
CREATE TRIGGER routing_working_weeks_truncated AFTER TRUNCATE ON routing_workingweek
    FOR EACH STATEMENT EXECUTE FUNCTION routing_holidays_changed();
"""

REVERSE_SQL = r"""
DROP TRIGGER IF EXISTS routing_working_weeks_changed ON routing_workingweek;
DROP TRIGGER IF EXISTS routing_working_weeks_truncated ON routing_workingweek;
"""


class Migration(migrations.Migration):
    dependencies = [("routing", "0004_merge_functions_holidays_suggestions_reroutes"),
                    ("routing", "0003_working_week")]

    operations = [migrations.RunSQL(SQL, REVERSE_SQL)]
