"""Area levels become data (issue 12): a city's own levels and their order (AreaLevel), which AdminArea.level
points at by code. The levels the registry already holds (the old fixed choices city, okrug and district) become
rows, in their old order; their names are their codes until a spec names them. Facility type names may be left
blank (a city in one language names its types in that language only)."""
import django.db.models.deletion
from django.db import migrations, models

OLD_RANKS = {"city": 0, "okrug": 1, "district": 2}


def levels_from_areas(apps, schema_editor):
    AdminArea = apps.get_model("facilities", "AdminArea")
    AreaLevel = apps.get_model("facilities", "AreaLevel")
    for code in AdminArea.objects.values_list("level", flat=True).distinct():
        AreaLevel.objects.get_or_create(code=code, defaults={"rank": OLD_RANKS.get(code, 10), "name_i18n": {}})


# The area and the areas above it (its parent, the parent's parent ...), nearest first: where a known area's
# levels are looked up (the re-route's quick path; routing.engine, routing.services). One rule, written once.
ANCESTORS = r"""
CREATE OR REPLACE FUNCTION facilities_area_and_ancestors(start_id bigint)
RETURNS TABLE (area_id bigint, level varchar, authority_id bigint, depth integer)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH RECURSIVE up (area_id, level, authority_id, parent_id, depth) AS (
        SELECT a.id, a.level, a.authority_id, a.parent_id, 0 FROM facilities_adminarea a
        WHERE a.id = start_id AND a.valid_to IS NULL
        UNION ALL
        SELECT a.id, a.level, a.authority_id, a.parent_id, up.depth + 1
        FROM up JOIN facilities_adminarea a ON a.id = up.parent_id AND a.valid_to IS NULL
        WHERE up.depth < 32)
    SELECT area_id, level, authority_id, depth FROM up
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("facilities", "0007_merge_working_weeks_target")]

    operations = [
        migrations.CreateModel(
            name="AreaLevel",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("code", models.SlugField(help_text="Stable identifier used by specs and routing rules",
                                          max_length=16, unique=True)),
                ("rank", models.PositiveSmallIntegerField(
                    help_text="0 for the largest areas; larger numbers nest inside smaller")),
                ("name_i18n", models.JSONField(blank=True, default=dict,
                                               help_text='{"en": "Ward", ...}: one per configured language')),
                ("dataset", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                                              to="facilities.dataset")),
            ],
            options={"ordering": ["rank", "code"]},
        ),
        migrations.RunPython(levels_from_areas, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="adminarea",
            name="level",
            field=models.ForeignKey(db_column="level", on_delete=django.db.models.deletion.PROTECT,
                                    related_name="areas", to="facilities.arealevel", to_field="code"),
        ),
        migrations.AlterModelOptions(name="adminarea", options={"ordering": ["level__rank", "name"]}),
        migrations.RunSQL(ANCESTORS, "DROP FUNCTION IF EXISTS facilities_area_and_ancestors(bigint);"),
        migrations.AlterField(model_name="facilitytype", name="name_ru", field=models.CharField(blank=True, max_length=200)),
        migrations.AlterField(model_name="facilitytype", name="name_en", field=models.CharField(blank=True, max_length=200)),
    ]
