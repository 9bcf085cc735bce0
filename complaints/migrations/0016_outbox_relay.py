"""The outbox relay (complaints.outbox.outbox_relay): a worker, not the writing request, puts each new outbox row's
task on the queue; `queued_at` marks the rows it has handed over."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("complaints", "0015_finest_level_volunteers_and_alert_group_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="outbox",
            name="queued_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="outbox",
            index=models.Index(condition=models.Q(("queued_at__isnull", True), ("state", "pending")),
                               fields=["id"], name="outbox_unqueued"),
        ),
    ]
