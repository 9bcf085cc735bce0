"""Hearing back over real SMTP through a real worker: a resident reports with an address, a second follows the
complaint (double opt-in: the confirmation link from the mail), the department takes it and answers; each gets
each change once, in their language, with its link and an unsubscribe link; unsubscribing by the mailed link stops
the next mail; a failing mail server is retried and the event mail sent once."""
import email
import email.policy
import re

import pytest

from complaints.models import Complaint, Follow, Outbox, Subscription
from complaints.services import complaint_answer, complaint_deny, complaint_take
from complaints.tracking import confirmation_key
from tests.complaints.factories import make_user

from .conftest import wait_until
from .test_tracking_mail_queue import post

pytestmark = pytest.mark.django_db(transaction=True)
LINK = re.compile(r"https?://\S+")


@pytest.fixture(autouse=True)
def _clean_mailbox(smtp):
    smtp.reset()
    yield
    smtp.reset()


def mails(smtp):
    """What the SMTP server accepted: [(to, subject, body)]."""
    out = []
    for raw in list(smtp.delivered):
        message = email.message_from_bytes(raw.encode("utf-8"), policy=email.policy.default)
        out.append((str(message["To"]), str(message["Subject"]).strip(), message.get_content()))
    return out


def to(smtp, address, containing=""):
    return [m for m in mails(smtp) if m[0] == address and containing in m[2]]


def test_the_loop_over_smtp(worker, smtp, demo_city, service, api_key, client, settings):
    complaint = post(client, api_key, email="reporter@example.org")
    wait_until(lambda: len(to(smtp, "reporter@example.org")) == 1, what="the tracking mail")

    # A second resident follows it from its public page, in English, and confirms by the mailed link.
    response = client.post(f"/n/{complaint.pk}/follow/", {"email": "Neighbour@Example.org"},
                            HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    wait_until(lambda: to(smtp, "neighbour@example.org"), what="the confirmation mail")
    [(_to, subject, body)] = to(smtp, "neighbour@example.org")
    assert subject.startswith("Confirm: follow report No.")
    [link] = [u for u in LINK.findall(body) if "/follow/" in u]
    assert link.startswith(settings.SITE_URL)
    assert client.get(link.removeprefix(settings.SITE_URL)).status_code == 302
    assert Follow.objects.get(complaint=complaint).state == Subscription.ACTIVE

    staff = make_user("t-queue-staff", departments=[complaint.department])
    complaint_take(complaint=complaint, user=staff)
    complaint_answer(complaint=Complaint.objects.get(pk=complaint.pk), user=staff, text="Яму заделали 1 декабря")
    wait_until(lambda: len(to(smtp, "reporter@example.org")) == 3 and len(to(smtp, "neighbour@example.org")) == 3,
               what="two changes mailed to both")
    reporter = to(smtp, "reporter@example.org")[1:]
    neighbour = to(smtp, "neighbour@example.org")[1:]
    assert "Взято в работу" in reporter[0][2] and "has taken it into work" in neighbour[0][2]  # their languages
    assert "Яму заделали 1 декабря" in reporter[1][2] and "Яму заделали 1 декабря" in neighbour[1][2]
    assert f"/c/{complaint.tracking_code}/" in reporter[1][2]
    assert complaint.tracking_code not in neighbour[1][2] and f"/n/{complaint.pk}/" in neighbour[1][2]

    # The neighbour unsubscribes by the mailed link (one POST, as a mail client's one-click does).
    [stop] = [u for u in LINK.findall(neighbour[1][2]) if "/unsubscribe/" in u]
    assert client.post(stop.removeprefix(settings.SITE_URL)).status_code == 200
    complaint_deny(tracking_code=complaint.tracking_code, key=confirmation_key(Complaint.objects.get(pk=complaint.pk)),
                   reason="яма осталась")
    wait_until(lambda: len(to(smtp, "reporter@example.org")) == 4, what="the reopening mail")
    assert "яма осталась" in to(smtp, "reporter@example.org")[3][2]
    assert len(to(smtp, "neighbour@example.org")) == 3  # unsubscribed: nothing more
    assert Outbox.objects.filter(kind="event", state="sent").count() == 5
    assert Outbox.objects.filter(kind="event").exclude(state="sent").count() == 0


def test_a_failing_server_is_retried_and_the_change_mailed_once(worker, smtp, demo_city, service, api_key, client):
    complaint = post(client, api_key, email="retry@example.org")
    wait_until(lambda: len(smtp.delivered) == 1, what="the tracking mail")
    smtp.fail = 2
    complaint_take(complaint=complaint, user=make_user("t-queue-retry", departments=[complaint.department]))
    wait_until(lambda: Outbox.objects.filter(kind="event", state="sent").count() == 1, what="the retried mail")
    row = Outbox.objects.get(kind="event")
    assert row.attempts == 3 and row.last_error == ""
    assert len(to(smtp, "retry@example.org", "Взято в работу")) == 1
