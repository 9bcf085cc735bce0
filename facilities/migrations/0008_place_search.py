"""The place search (facilities.search): the `addresses` target's table, the search vocabulary, and the one rule of
how a name is searched, as a SQL function with the GIN indexes on it.

- facilities_search_key(text) -> tsvector: the text's stems in the city's language (settings.SEARCH_TEXT_CONFIG,
  read when this migration runs: to change it, recreate the function and REINDEX the indexes below). IMMUTABLE, so
  that expression indexes can be built on it; a single-statement LANGUAGE sql function, inlined by the planner.
- GIN indexes on facilities_search_key(name || ' ' || address) of the facilities (the partitioned table: each
  partition gets it, and importers.load.index_generation builds it on a new generation before the switch), of the
  admin areas' names and of the addresses' labels.
- facilities_searchterm: the vocabulary of stems, with a pg_trgm GIN index for the typo lookup; filled here from
  what is loaded, then by the imports (facilities.search.search_terms_add).
"""
import re

import django.db.models.deletion
from django.conf import settings
from django.contrib.gis.db import models
from django.db import migrations


def _config():
    config = getattr(settings, "SEARCH_TEXT_CONFIG", "simple")
    if not re.fullmatch(r"[a-z_]{1,63}", config):
        raise ValueError(f"SEARCH_TEXT_CONFIG must name a text search configuration, got {config!r}")
    return config


def create_sql(apps, schema_editor):
    config = _config()
    with schema_editor.connection.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        cur.execute(f"""
            CREATE OR REPLACE FUNCTION facilities_search_key(t text) RETURNS tsvector
            LANGUAGE sql IMMUTABLE PARALLEL SAFE
            AS $$ SELECT to_tsvector('{config}'::regconfig, coalesce(t, '')) $$""")
        cur.execute("CREATE INDEX IF NOT EXISTS facility_search ON facilities_facility "
                    "USING gin (facilities_search_key(name || ' ' || address))")
        cur.execute("CREATE INDEX IF NOT EXISTS area_search ON facilities_adminarea "
                    "USING gin (facilities_search_key(name))")
        cur.execute("CREATE INDEX IF NOT EXISTS address_search ON facilities_address "
                    "USING gin (facilities_search_key(label))")
        cur.execute("CREATE INDEX IF NOT EXISTS searchterm_trgm ON facilities_searchterm "
                    "USING gin (term gin_trgm_ops)")
        for source in ("SELECT facilities_search_key(name || ' ' || address) FROM facilities_facility "
                       "WHERE valid_to IS NULL",
                       "SELECT facilities_search_key(name) FROM facilities_adminarea WHERE valid_to IS NULL"):
            cur.execute("INSERT INTO facilities_searchterm (term) SELECT word FROM ts_stat(%s) "
                        "WHERE length(word) <= 200 ON CONFLICT DO NOTHING", [source])


DROP_SQL = """
DROP INDEX IF EXISTS facility_search;
DROP INDEX IF EXISTS area_search;
DROP FUNCTION IF EXISTS facilities_search_key(text);
"""


class Migration(migrations.Migration):

    dependencies = [
        ("facilities", "0007_merge_working_weeks_target"),
    ]

    operations = [
        migrations.AlterField(
            model_name="dataset",
            name="target",
            field=models.CharField(choices=[("areas", "admin areas"), ("authorities", "authorities"),
                                            ("facilities", "facilities"), ("categories", "service catalogue"),
                                            ("assignments", "routing table"), ("holidays", "holidays"),
                                            ("working_weeks", "working weeks"), ("addresses", "addresses")],
                                   max_length=16),
        ),
        migrations.CreateModel(
            name="SearchTerm",
            fields=[("term", models.CharField(max_length=200, primary_key=True, serialize=False))],
        ),
        migrations.CreateModel(
            name="Address",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("source_key", models.CharField(max_length=200)),
                ("label", models.CharField(max_length=500)),
                ("street", models.CharField(blank=True, max_length=300)),
                ("house", models.CharField(blank=True, max_length=100)),
                ("district", models.CharField(blank=True, help_text="as the source names it (shown, not routed)",
                                              max_length=200)),
                ("geom", models.PointField(srid=4326)),
                ("dataset", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT,
                                              to="facilities.dataset")),
            ],
            options={"verbose_name_plural": "addresses"},
        ),
        migrations.AddConstraint(
            model_name="address",
            constraint=models.UniqueConstraint(fields=("dataset", "source_key"), name="address_source_unique"),
        ),
        migrations.RunPython(create_sql, lambda apps, schema_editor: schema_editor.execute(DROP_SQL)),
    ]
