"""The place search's index on the facilities becomes each generation's own (facilities.search): a GIN index on
facilities_search_key(name || ' ' || address) of the partitioned table made every import build it inside its
transaction (ATTACH requires each partitioned index on the new partition), about half a 1M import's time. Now a
generation is indexed, and its names' stems added to the vocabulary, just after the commit that made it
(generation_make_searchable); `Generation.searchable` says it is done, and the search reads only such generations.
Here: the partitioned index is dropped (with its partitions' indexes) and each existing generation's table,
attached or kept, gets an index of its own, the same expression."""
from django.db import migrations, models

INDEX_SQL = "CREATE INDEX IF NOT EXISTS \"{table}_search\" ON \"{table}\" USING gin (facilities_search_key(name || ' ' || address))"


def per_generation(apps, schema_editor):
    Generation = apps.get_model("facilities", "Generation")
    with schema_editor.connection.cursor() as cur:
        cur.execute("DROP INDEX IF EXISTS facility_search")
        for generation in Generation.objects.filter(state__in=["active", "previous"]):
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", [generation.table_name])
            if not cur.fetchone()[0]:
                continue
            # a generation switched out before this kept its copy of the partitioned index (detached, renamed)
            cur.execute("SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s "
                        "AND indexdef LIKE '%%USING gin (facilities_search_key(%%')", [generation.table_name])
            if not cur.fetchone()[0]:
                cur.execute(INDEX_SQL.format(table=generation.table_name))
            Generation.objects.filter(pk=generation.pk).update(searchable=True)


def back_to_partitioned(apps, schema_editor):
    Generation = apps.get_model("facilities", "Generation")
    with schema_editor.connection.cursor() as cur:
        for generation in Generation.objects.filter(state__in=["active", "previous"]):
            cur.execute(f'DROP INDEX IF EXISTS "{generation.table_name}_search"')
        cur.execute("CREATE INDEX IF NOT EXISTS facility_search ON facilities_facility "
                    "USING gin (facilities_search_key(name || ' ' || address))")


class Migration(migrations.Migration):

    dependencies = [("facilities", "0015_searchterm_word_prefix_index")]

    operations = [
        migrations.AddField(model_name="generation", name="searchable", field=models.BooleanField(default=False)),
        migrations.RunPython(per_generation, back_to_partitioned),
    ]
