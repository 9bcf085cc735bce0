"""Confirmation keys: each complaint gets a random confirmation secret (its resident's confirmation key is derived
from it, complaints.tracking). PostgreSQL's column default makes one per row, so every complaint stored before
gets its own (a table rewrite; gen_random_uuid, 122 bits). TrackingMail.with_key: the mails sent so far carried no
key, so complaints.mails sends those residents whose complaints are still open or answered their key.
"""

import complaints.tracking
import django.db.models.functions.comparison
import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('complaints', '0004_tracking_mail'),
    ]

    operations = [
        migrations.AddField(
            model_name='complaint',
            name='confirmation_secret',
            field=models.CharField(
                db_default=django.db.models.functions.text.Replace(
                    django.db.models.functions.comparison.Cast(
                        models.Func(function='gen_random_uuid', output_field=models.UUIDField()), models.CharField()),
                    models.Value('-'), models.Value('')),
                default=complaints.tracking.new_confirmation_secret, editable=False, max_length=32),
        ),
        migrations.AddField(
            model_name='trackingmail',
            name='with_key',
            field=models.BooleanField(default=False),
        ),
    ]
