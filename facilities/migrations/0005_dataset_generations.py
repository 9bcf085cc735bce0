"""A facilities dataset's generations become rows (facilities.Generation); the partition each dataset has today is
its first, active generation. Detached generations left by older runs (facilities_facility_old_*) are dropped by
the next commit, as before."""
import django.db.models.deletion
from django.db import migrations, models


def existing_partitions(apps, schema_editor):
    Dataset = apps.get_model("facilities", "Dataset")
    Generation = apps.get_model("facilities", "Generation")
    connection = schema_editor.connection
    for dataset in Dataset.objects.filter(target="facilities").exclude(partition_table=""):
        with connection.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", [dataset.partition_table])
            if not cur.fetchone()[0]:
                continue
            cur.execute(f'SELECT count(*), count(*) FILTER (WHERE valid_to IS NULL) FROM "{dataset.partition_table}"')
            rows, active = cur.fetchone()
        Generation.objects.create(dataset=dataset, state="active", table_name=dataset.partition_table,
                                  counts={"rows": rows, "active": active}, actor="migration")


class Migration(migrations.Migration):

    dependencies = [("facilities", "0004_membership_audit")]

    operations = [
        migrations.CreateModel(
            name="Generation",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("state", models.CharField(choices=[
                    ("active", "active (what routing reads)"),
                    ("previous", "previous (kept: the dataset can be rolled back to it)"),
                    ("dropped", "replaced (its table is dropped)"),
                    ("undone", "undone by a rollback (its table is dropped)")], max_length=16)),
                ("table_name", models.CharField(help_text="The table that holds this generation's facilities",
                                                max_length=63)),
                ("counts", models.JSONField(blank=True, default=dict,
                                            help_text="What the commit that made it did, and its rows")),
                ("run_id", models.IntegerField(blank=True, null=True)),
                ("actor", models.CharField(blank=True, max_length=150)),
                ("ended_at", models.DateTimeField(blank=True, null=True)),
                ("dataset", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                              related_name="generations", to="facilities.dataset")),
            ],
            options={"ordering": ["dataset", "-id"]},
        ),
        migrations.AddConstraint(
            model_name="generation",
            constraint=models.UniqueConstraint(condition=models.Q(("state", "active")), fields=("dataset",),
                                               name="generation_one_active"),
        ),
        migrations.AddConstraint(
            model_name="generation",
            constraint=models.UniqueConstraint(condition=models.Q(("state", "previous")), fields=("dataset",),
                                               name="generation_one_previous"),
        ),
        migrations.RunPython(existing_partitions, migrations.RunPython.noop),
    ]
