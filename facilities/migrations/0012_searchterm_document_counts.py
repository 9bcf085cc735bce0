"""The place search's vocabulary learns how many names hold each stem (facilities_searchterm.ndoc, ts_stat's ndoc,
the most any one source has): a stem that nearly every name holds ("дом", the city's own name) narrows nothing, and
facilities.search leaves it out of the index condition when the query has a rarer word (on 1M facilities the GIN
posting trees of such stems were most of a search's time). Filled here from what is loaded, then by the imports
(facilities.search.search_terms_add)."""
from django.db import migrations, models

FILL = """
UPDATE facilities_searchterm t SET ndoc = greatest(t.ndoc, s.ndoc)
FROM ts_stat(%s) s WHERE s.word = t.term"""
SOURCES = ["SELECT facilities_search_key(name || ' ' || address) FROM facilities_facility WHERE valid_to IS NULL",
           "SELECT facilities_search_key(name) FROM facilities_adminarea WHERE valid_to IS NULL",
           "SELECT facilities_search_key(label) FROM facilities_address"]


def fill(apps, schema_editor):
    with schema_editor.connection.cursor() as cur:
        for source in SOURCES:
            cur.execute(FILL, [source])


class Migration(migrations.Migration):

    dependencies = [
        ("facilities", "0011_merge_area_levels_and_place_search"),
    ]

    operations = [
        migrations.AddField(
            model_name="searchterm",
            name="ndoc",
            field=models.PositiveIntegerField(default=0, db_default=0,
                                              help_text="names holding this stem, at most (the largest source's "
                                                        "count)"),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
