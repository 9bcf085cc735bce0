"""Joins issue 12's area levels as data (0008_area_levels_as_data) with issue 10's and 11's line (the authority's
answer moderation, facilities_covering). No operation: they touch different things."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("facilities", "0008_area_levels_as_data"),
        ("facilities", "0009_merge_moderate_answers_and_covering"),
    ]

    operations = []
