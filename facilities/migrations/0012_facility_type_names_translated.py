"""A facility type's name becomes a translated field like the catalogue's (issue 12): name_ru and name_en move into
name_i18n ({language: text}, empty names left out) and back on the way down."""
from django.db import migrations, models

FORWARD = """
UPDATE facilities_facilitytype SET
    name_i18n = jsonb_strip_nulls(jsonb_build_object('ru', nullif(name_ru, ''), 'en', nullif(name_en, '')))
"""
BACKWARD = """
UPDATE facilities_facilitytype SET
    name_ru = left(coalesce(name_i18n->>'ru', ''), 200),
    name_en = left(coalesce(name_i18n->>'en',
                            (SELECT t.value FROM jsonb_each_text(name_i18n) t WHERE t.value <> '' ORDER BY t.key LIMIT 1),
                            ''), 200)
"""


class Migration(migrations.Migration):
    dependencies = [("facilities", "0011_merge_area_levels_and_place_search")]

    operations = [
        migrations.AddField(
            model_name="facilitytype", name="name_i18n",
            field=models.JSONField(blank=True, default=dict,
                                   help_text='{"en": "School", ...}: one per configured language')),
        migrations.RunSQL(FORWARD, BACKWARD),
        migrations.RemoveField(model_name="facilitytype", name="name_en"),
        migrations.RemoveField(model_name="facilitytype", name="name_ru"),
    ]
