"""The mail outbox replaces TrackingMail (issue 9): each tracking mail's record becomes an Outbox row of kind
`tracking` (sent, or still pending with its attempts), a complaint mailed before there were confirmation keys and
not closed gets a pending `tracking` mail carrying the key (context key_only), and a recent complaint with an
address and no record yet gets its pending mail. Then TrackingMail goes. Also: the overdue mark."""
import datetime

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


MAX_AGE_DAYS = 7  # settings.TRACKING_MAIL_MAX_AGE_DAYS when this was written
CLOSED = ("resolved", "duplicate", "hidden")


def tracking_mail_to_outbox(apps, schema_editor):
    Complaint = apps.get_model("complaints", "Complaint")
    TrackingMail = apps.get_model("complaints", "TrackingMail")
    Outbox = apps.get_model("complaints", "Outbox")
    now = django.utils.timezone.now()
    rows = []
    for mail in TrackingMail.objects.select_related("complaint").iterator():
        c = mail.complaint
        sent = mail.sent_at is not None
        rows.append(Outbox(kind="tracking", recipient=mail.to or c.email, dedupe_key=f"tracking:{c.pk}",
                           complaint=c, state="sent" if sent else "pending", attempts=mail.attempts,
                           last_error=mail.last_error, created_at=c.submitted_at, sent_at=mail.sent_at,
                           next_attempt_at=now))
        if sent and not mail.with_key and c.state not in CLOSED and c.email:
            rows.append(Outbox(kind="tracking", recipient=c.email, dedupe_key=f"tracking-key:{c.pk}", complaint=c,
                               context={"key_only": True}, next_attempt_at=now))
    since = now - datetime.timedelta(days=MAX_AGE_DAYS)
    for c in (Complaint.objects.filter(submitted_at__gte=since, tracking_mail__isnull=True).exclude(email="")
              .exclude(state="hidden").iterator()):
        rows.append(Outbox(kind="tracking", recipient=c.email, dedupe_key=f"tracking:{c.pk}", complaint=c,
                           created_at=c.submitted_at, next_attempt_at=now))
    Outbox.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)


class Migration(migrations.Migration):

    dependencies = [
        ('complaints', '0006_complaint_media_url'),
    ]

    operations = [
        migrations.AddField(
            model_name='complaint',
            name='overdue_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='complaintevent',
            name='kind',
            field=models.CharField(choices=[('created', 'Created'), ('state', 'State'), ('routed', 'Routed'), ('answer', 'Answer'), ('transfer', 'Transfer'), ('duplicate', 'Duplicate'), ('confirmed', 'Confirmed'), ('reopened', 'Reopened'), ('hidden', 'Hidden'), ('overdue', 'Overdue')], max_length=16),
        ),
        migrations.CreateModel(
            name='Outbox',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(max_length=40)),
                ('recipient', models.EmailField(max_length=254)),
                ('language', models.CharField(blank=True, max_length=16)),
                ('context', models.JSONField(blank=True, default=dict)),
                ('dedupe_key', models.CharField(max_length=200, unique=True)),
                ('state', models.CharField(choices=[('pending', 'pending'), ('sent', 'sent'), ('failed', 'failed (gave up after the last attempt)'), ('cancelled', 'cancelled (no longer due)')], default='pending', max_length=16)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('last_error', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('next_attempt_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('sent_at', models.DateTimeField(blank=True, null=True)),
                ('complaint', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='mails', to='complaints.complaint')),
            ],
            options={
                'verbose_name': 'outbox mail',
                'verbose_name_plural': 'outbox',
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.AddIndex(
            model_name='outbox',
            index=models.Index(condition=models.Q(('state', 'pending')), fields=['next_attempt_at'], name='outbox_due'),
        ),
        migrations.RunPython(tracking_mail_to_outbox, migrations.RunPython.noop),
        migrations.DeleteModel(
            name='TrackingMail',
        ),
    ]
