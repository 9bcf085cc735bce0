"""A routing decision's rule `facility_group`: the point lies inside a building of a type of the category's group
(the place over the category, routing.engine's PLACE_RULE). Only the field's choices change."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("routing", "0005_working_week_stamp"),
    ]

    operations = [
        migrations.AlterField(
            model_name="routingdecision",
            name="rule",
            field=models.CharField(choices=[
                ("facility_picked", "Facility Picked"), ("facility_covers", "Facility Covers"),
                ("facility_nearest", "Facility Nearest"), ("facility_group", "Facility Group"),
                ("district", "District"), ("okrug", "Okrug"), ("department", "Department"), ("triage", "Triage"),
                ("manual", "Manual")], max_length=24),
        ),
    ]
