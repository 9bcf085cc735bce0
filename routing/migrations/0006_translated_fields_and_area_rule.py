"""Translated fields hold one value per configured language (issue 12): a category's name, group and description,
a question's description and its values' names become {language code: text} (the _ru and _en columns they
replace are copied in, empty ones left out). And the area rule names any area level (facilities.AreaLevel): the
rules `district` and `okrug` become `area` with that level, the facility rule's fall-back level is the same field
(a fall-back to the department is no level), and stored decisions of those rules become `area` decisions."""
import django.db.models.deletion
from django.db import migrations, models

FORWARD = r"""
UPDATE routing_category SET
    name_i18n = jsonb_strip_nulls(jsonb_build_object('ru', nullif(name_ru, ''), 'en', nullif(name_en, ''))),
    group_i18n = jsonb_strip_nulls(jsonb_build_object('ru', nullif(group_ru, ''), 'en', nullif(group_en, ''))),
    description_i18n = jsonb_strip_nulls(jsonb_build_object('ru', nullif(description_ru, ''),
                                                            'en', nullif(description_en, ''))),
    area_level_id = CASE WHEN rule IN ('district', 'okrug') THEN rule
                         WHEN rule = 'facility' AND fallback_level IN ('district', 'okrug') THEN fallback_level END,
    rule = CASE WHEN rule IN ('district', 'okrug') THEN 'area' ELSE rule END;
UPDATE routing_categoryattribute SET
    description_i18n = jsonb_strip_nulls(jsonb_build_object('ru', nullif(description_ru, ''),
                                                            'en', nullif(description_en, ''))),
    "values" = coalesce((SELECT jsonb_agg(jsonb_build_object('key', v->'key', 'name_i18n', jsonb_strip_nulls(
                            jsonb_build_object('ru', nullif(v->>'name_ru', ''), 'en', nullif(v->>'name_en', '')))))
                         FROM jsonb_array_elements("values") v), '[]');
UPDATE routing_routingdecision SET rule = 'area' WHERE rule IN ('district', 'okrug');
"""

# Back to the _ru and _en columns (a language other than those two is dropped; a level other than the old two
# becomes the district rule).
BACKWARD = r"""
UPDATE routing_category SET
    name_ru = coalesce(name_i18n->>'ru', ''), name_en = coalesce(name_i18n->>'en', ''),
    group_ru = coalesce(group_i18n->>'ru', ''), group_en = coalesce(group_i18n->>'en', ''),
    description_ru = coalesce(description_i18n->>'ru', ''), description_en = coalesce(description_i18n->>'en', ''),
    fallback_level = CASE WHEN rule = 'facility' AND area_level_id IN ('district', 'okrug') THEN area_level_id
                          ELSE 'department' END,
    rule = CASE WHEN rule = 'area' THEN CASE WHEN area_level_id = 'okrug' THEN 'okrug' ELSE 'district' END
                ELSE rule END;
UPDATE routing_categoryattribute SET
    description_ru = coalesce(description_i18n->>'ru', ''), description_en = coalesce(description_i18n->>'en', ''),
    "values" = coalesce((SELECT jsonb_agg(jsonb_build_object('key', v->'key', 'name_ru', v->'name_i18n'->>'ru',
                                                             'name_en', v->'name_i18n'->>'en'))
                         FROM jsonb_array_elements("values") v), '[]');
UPDATE routing_routingdecision d SET rule = CASE WHEN a.level = 'okrug' THEN 'okrug' ELSE 'district' END
FROM facilities_adminarea a WHERE d.rule = 'area' AND a.id = d.area_id;
UPDATE routing_routingdecision SET rule = 'district' WHERE rule = 'area';
"""


def levels_for_rules(apps, schema_editor):
    """The levels the old rules name exist as AreaLevel rows (a registry with categories but no areas yet)."""
    Category = apps.get_model("routing", "Category")
    AreaLevel = apps.get_model("facilities", "AreaLevel")
    ranks = {"okrug": 1, "district": 2}
    used = set(Category.objects.filter(rule__in=ranks).values_list("rule", flat=True))
    used |= set(Category.objects.filter(rule="facility", fallback_level__in=ranks).values_list("fallback_level",
                                                                                                 flat=True))
    for code in used:
        AreaLevel.objects.get_or_create(code=code, defaults={"rank": ranks[code], "name_i18n": {}})


class Migration(migrations.Migration):
    dependencies = [("routing", "0005_working_week_stamp"), ("facilities", "0008_area_levels_as_data")]

    operations = [
        migrations.AddField("category", "name_i18n", models.JSONField(default=dict, help_text='{"en": "Pothole", ...}')),
        migrations.AddField("category", "group_i18n", models.JSONField(default=dict, help_text='{"en": "Roads", ...}')),
        migrations.AddField("category", "description_i18n", models.JSONField(blank=True, default=dict)),
        migrations.AddField("category", "area_level", models.ForeignKey(
            blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+",
            to="facilities.arealevel", to_field="code",
            help_text="the area rule: the level whose covering area's authority answers; the facility rule: the same "
                      "as its fall-back when no facility matches (none: the category's department, else triage)")),
        migrations.AddField("categoryattribute", "description_i18n",
                            models.JSONField(default=dict, help_text='{"en": "Which side?", ...}')),
        migrations.RunPython(levels_for_rules, migrations.RunPython.noop),
        # Defaults on the columns that go, so that the migration can be reversed over rows (they come back empty,
        # then BACKWARD fills them).
        *[migrations.AlterField(model, name, models.CharField(max_length=length, default="", blank=True))
          for model, name, length in [("category", "name_ru", 200), ("category", "name_en", 200),
                                      ("category", "group_ru", 100), ("category", "group_en", 100),
                                      ("categoryattribute", "description_ru", 500),
                                      ("categoryattribute", "description_en", 500)]],
        *[migrations.AlterField("category", name, models.TextField(blank=True, default=""))
          for name in ("description_ru", "description_en")],
        migrations.RunSQL(FORWARD, BACKWARD),
        migrations.AlterModelOptions(name="category", options={"ordering": ["code"], "verbose_name_plural": "categories"}),
        migrations.RemoveField("category", "name_ru"),
        migrations.RemoveField("category", "name_en"),
        migrations.RemoveField("category", "group_ru"),
        migrations.RemoveField("category", "group_en"),
        migrations.RemoveField("category", "description_ru"),
        migrations.RemoveField("category", "description_en"),
        migrations.RemoveField("category", "fallback_level"),
        migrations.RemoveField("categoryattribute", "description_ru"),
        migrations.RemoveField("categoryattribute", "description_en"),
        migrations.AlterField("category", "rule", models.CharField(
            choices=[("facility", "owner of the facility it is about, else the fall-back"),
                     ("area", "authority with jurisdiction over the area of a level"),
                     ("department", "a fixed department")], default="area", max_length=16)),
        migrations.AlterField("categoryattribute", "values", models.JSONField(
            blank=True, default=list, help_text='[{"key": ..., "name_i18n": {"en": ..., ...}}]')),
        migrations.AlterField("routingdecision", "rule", models.CharField(
            choices=[("facility_picked", "Facility Picked"), ("facility_covers", "Facility Covers"),
                     ("facility_nearest", "Facility Nearest"), ("area", "Area"), ("department", "Department"),
                     ("triage", "Triage"), ("manual", "Manual")], max_length=24)),
    ]
