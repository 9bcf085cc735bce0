"""A resident who reports through an integrator gets the tracking code by e-mail (Open311 never shows it), through
the outbox (here sent by `manage.py send_tracking_codes`, the old name of `send_mail`): once, to the address given,
with the complaint's page; failures are recorded and tried again after a backoff; nothing for complaints without an
address, hidden ones or old ones."""
import datetime
import smtplib
from urllib.parse import urlencode

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import CommandError, call_command
from django.utils import timezone

from complaints.models import Complaint, Outbox
from complaints.services import complaint_hide

from .conftest import form

BASE = "/open311/v2"

pytestmark = pytest.mark.django_db


class DownBackend(BaseEmailBackend):
    """A mail server that refuses everything."""

    def send_messages(self, messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


def post(client, api_key, **extra):
    response = client.post(f"{BASE}/requests.json", urlencode(form(api_key, **extra)),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 201, response.content
    return Complaint.objects.get(pk=response.json()[0]["service_request_id"])


def test_a_resident_reporting_through_an_integrator_gets_the_code_by_mail(client, service, api_key, settings,
                                                                          capsys):
    settings.SITE_URL = "https://ourcity.example"
    with_address = post(client, api_key, email="ivan@example.org")
    without = post(client, api_key, email="")
    # nothing is sent while the request is being filed: one pending outbox row, for the one with an address
    assert list(Outbox.objects.values_list("complaint", "state", "attempts")) == [(with_address.pk, "pending", 0)]

    call_command("send_tracking_codes")
    assert "1 sent, 0 failed" in capsys.readouterr().out
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ivan@example.org"]
    assert str(with_address.pk) in message.subject
    assert f"https://ourcity.example/c/{with_address.tracking_code}/" in message.body
    assert with_address.tracking_code in message.body and without.tracking_code not in message.body
    assert with_address.department.display_name in message.body
    record = Outbox.objects.get()
    assert record.complaint == with_address and record.sent_at is not None and record.attempts == 1
    assert record.state == "sent" and record.recipient == "ivan@example.org" and record.kind == "tracking"

    call_command("send_tracking_codes")  # once only
    assert len(mail.outbox) == 1
    assert "0 sent, 0 failed" in capsys.readouterr().out


def test_a_failed_mail_is_recorded_and_tried_again_up_to_the_limit(client, service, api_key, settings):
    complaint = post(client, api_key)
    settings.EMAIL_BACKEND = "tests.open311.test_tracking_mail.DownBackend"
    settings.OUTBOX_MAX_ATTEMPTS = 3
    settings.OUTBOX_RETRY_BACKOFF = 60
    with pytest.raises(CommandError, match="1 mails could not be sent"):
        call_command("send_tracking_codes")
    record = Outbox.objects.get(complaint=complaint)
    assert record.sent_at is None and record.attempts == 1 and record.state == "pending"
    assert record.last_error == "SMTPServerDisconnected: Connection unexpectedly closed"
    # the next try waits for its backoff: 60 s, then 120 s
    assert 59 <= (record.next_attempt_at - timezone.now()).total_seconds() <= 60
    call_command("send_tracking_codes")
    assert Outbox.objects.get(complaint=complaint).attempts == 1
    for attempts, wait in ((2, 120), (3, None)):
        Outbox.objects.filter(complaint=complaint).update(next_attempt_at=timezone.now())
        with pytest.raises(CommandError):
            call_command("send_tracking_codes")
        record = Outbox.objects.get(complaint=complaint)
        assert record.attempts == attempts
        if wait:
            assert wait - 1 <= (record.next_attempt_at - timezone.now()).total_seconds() <= wait
    assert record.state == "failed"  # the limit is reached: given up, shown as failed in the admin
    call_command("send_tracking_codes")
    assert Outbox.objects.get(complaint=complaint).attempts == 3

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from complaints.outbox import outbox_retry

    assert outbox_retry(entries=[record]) == 1  # an administrator's "send again"
    call_command("send_tracking_codes")  # the server is back
    record = Outbox.objects.get(complaint=complaint)
    assert record.sent_at is not None and record.attempts == 1 and record.last_error == "" and record.state == "sent"
    assert [m.to for m in mail.outbox] == [["ivan@example.org"]]


def test_no_mail_for_hidden_or_old_complaints(client, service, api_key, dispatcher):
    hidden = post(client, api_key, email="spam@example.org")
    complaint_hide(complaint=hidden, user=dispatcher, reason="spam")
    old = post(client, api_key, email="late@example.org")
    Complaint.objects.filter(pk=old.pk).update(submitted_at=timezone.now() - datetime.timedelta(days=8))
    call_command("send_tracking_codes")
    assert mail.outbox == []
    assert set(Outbox.objects.values_list("complaint", "state")) == {(hidden.pk, "cancelled"), (old.pk, "cancelled")}


def test_bad_options_are_one_clear_line():
    with pytest.raises(CommandError, match="--limit must be at least 1"):
        call_command("send_tracking_codes", "--limit", "0")
