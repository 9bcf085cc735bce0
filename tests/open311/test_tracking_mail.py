"""A resident who reports through an integrator gets the tracking code by e-mail (Open311 never shows it), from
`manage.py send_tracking_codes`: once, to the address given, with the complaint's page; failures are recorded and
tried again; nothing for complaints without an address, hidden ones or old ones."""
import datetime
import smtplib
from urllib.parse import urlencode

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import CommandError, call_command
from django.utils import timezone

from complaints.models import Complaint, TrackingMail
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
    assert not TrackingMail.objects.exists()  # nothing is sent while the request is being filed

    call_command("send_tracking_codes")
    assert "1 sent, 0 failed" in capsys.readouterr().out
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ivan@example.org"]
    assert str(with_address.pk) in message.subject
    assert f"https://ourcity.example/c/{with_address.tracking_code}/" in message.body
    assert with_address.tracking_code in message.body and without.tracking_code not in message.body
    assert with_address.department.display_name in message.body
    record = TrackingMail.objects.get()
    assert record.complaint == with_address and record.sent_at is not None and record.attempts == 1

    call_command("send_tracking_codes")  # once only
    assert len(mail.outbox) == 1
    assert "0 sent, 0 failed" in capsys.readouterr().out


def test_a_failed_mail_is_recorded_and_tried_again_up_to_the_limit(client, service, api_key, settings):
    complaint = post(client, api_key)
    settings.EMAIL_BACKEND = "tests.open311.test_tracking_mail.DownBackend"
    settings.TRACKING_MAIL_MAX_ATTEMPTS = 2
    with pytest.raises(CommandError, match="1 tracking-code mails could not be sent"):
        call_command("send_tracking_codes")
    record = TrackingMail.objects.get(complaint=complaint)
    assert record.sent_at is None and record.attempts == 1
    assert record.last_error == "SMTPServerDisconnected: Connection unexpectedly closed"
    with pytest.raises(CommandError):
        call_command("send_tracking_codes")
    assert TrackingMail.objects.get(complaint=complaint).attempts == 2
    call_command("send_tracking_codes")  # the limit is reached: left alone, no error
    assert TrackingMail.objects.get(complaint=complaint).attempts == 2

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.TRACKING_MAIL_MAX_ATTEMPTS = 5
    call_command("send_tracking_codes")  # the server is back
    record = TrackingMail.objects.get(complaint=complaint)
    assert record.sent_at is not None and record.attempts == 3 and record.last_error == ""
    assert [m.to for m in mail.outbox] == [["ivan@example.org"]]


def test_no_mail_for_hidden_or_old_complaints(client, service, api_key, dispatcher):
    hidden = post(client, api_key, email="spam@example.org")
    complaint_hide(complaint=hidden, user=dispatcher, reason="spam")
    old = post(client, api_key, email="late@example.org")
    Complaint.objects.filter(pk=old.pk).update(submitted_at=timezone.now() - datetime.timedelta(days=8))
    call_command("send_tracking_codes")
    assert mail.outbox == [] and not TrackingMail.objects.exists()


def test_bad_options_are_one_clear_line():
    with pytest.raises(CommandError, match="--limit must be at least 1"):
        call_command("send_tracking_codes", "--limit", "0")
