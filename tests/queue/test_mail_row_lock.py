"""The mail's row lock: a tracking mail that another sender holds (its Outbox row locked) is skipped, not
waited for and not sent twice; once the holder is gone it is sent once, and after that it is no longer due."""
import threading

import pytest
from django.core import mail
from django.core.mail import get_connection
from django.db import connection, transaction

from complaints.models import Outbox
from complaints.outbox import outbox_send
from complaints.services import complaint_create

pytestmark = pytest.mark.django_db(transaction=True)


def hold_row(complaint_id, locked, release):
    try:
        with transaction.atomic():  # a sender in mid-send
            list(Outbox.objects.select_for_update().filter(complaint_id=complaint_id))
            locked.set()
            release.wait(5)
    finally:
        connection.close()


def test_a_held_mail_is_skipped_then_sent_once(demo_city, service):
    complaint = complaint_create(category=service, point=(37.6208, 55.7539), description="Яма",
                                 attributes={"kind": "hole"})
    # its outbox row, written without a task (this test sends)
    entry = Outbox.objects.create(kind="tracking", recipient="ivan@example.org", dedupe_key=f"tracking:{complaint.pk}",
                                  complaint=complaint)
    complaint.__class__.objects.filter(pk=complaint.pk).update(email="ivan@example.org")
    mailer = get_connection("django.core.mail.backends.locmem.EmailBackend")
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_row, args=(complaint.pk, locked, release))
    holder.start()
    try:
        assert locked.wait(10)
        assert outbox_send(entry.pk, mailer=mailer) == "busy"
        assert mail.outbox == []
    finally:
        release.set()
        holder.join(10)
    assert outbox_send(entry.pk, mailer=mailer) == "sent"
    assert outbox_send(entry.pk, mailer=mailer) == "not due"
    assert len(mail.outbox) == 1 and Outbox.objects.get(complaint=complaint).attempts == 1
