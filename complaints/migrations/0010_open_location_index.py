"""The nearby open complaints (complaints.selectors.complaints_nearby: duplicates before filing, and on the staff
ticket page) come from a GiST index of the open complaints' points only (Open311's "open": all but resolved,
duplicate and hidden): closed ones, which pile up over the years,
are never in it. pg_trgm (created by facilities' migration 0008) compares the descriptions."""
from django.db import migrations

CLOSED = "('resolved', 'duplicate', 'hidden')"  # complaints.models.CLOSED_STATES


class Migration(migrations.Migration):

    dependencies = [
        ("complaints", "0009_event_kinds_category_and_overdue"),
        ("facilities", "0008_place_search"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX IF NOT EXISTS complaint_open_location ON complaints_complaint USING gist (location) "
            f"WHERE state NOT IN {CLOSED}",
            "DROP INDEX IF EXISTS complaint_open_location"),
    ]
