"""Joins issue 12's translated fields and area rule (0006_translated_fields_and_area_rule) with issue 10's answer
cycle and issue 11's place over the category (0007_merge_answer_cycle_and_facility_group): a routing decision's
rule is one of both lines' choices (facility_group beside area; district and okrug are gone, 0006 turned their
decisions into area ones). Only the field's choices change."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("routing", "0006_translated_fields_and_area_rule"),
        ("routing", "0007_merge_answer_cycle_and_facility_group"),
    ]

    operations = [
        migrations.AlterField(
            model_name="routingdecision",
            name="rule",
            field=models.CharField(choices=[
                ("facility_picked", "Facility Picked"), ("facility_covers", "Facility Covers"),
                ("facility_nearest", "Facility Nearest"), ("facility_group", "Facility Group"), ("area", "Area"),
                ("department", "Department"), ("triage", "Triage"), ("manual", "Manual")], max_length=24),
        ),
    ]
