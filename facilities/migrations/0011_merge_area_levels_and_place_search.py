"""Joins issue 12's area levels as data (0008_area_levels_as_data) with main's line (the authority's answer
moderation, facilities_covering, the place search: 0010_merge_place_search). No operation: they touch different
things."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("facilities", "0008_area_levels_as_data"),
        ("facilities", "0010_merge_place_search"),
    ]

    operations = []
