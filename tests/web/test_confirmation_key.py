"""The confirmation key: the tracking code opens a complaint's page (which shows only public things), but confirming
or denying the department's answer takes the key, which only the resident gets (once on the site after filing, and
in the tracking mail). Without it, or with any other key, nothing changes."""
import datetime
import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection
from django.test import Client
from django.utils import timezone

from complaints.errors import ComplaintPermissionDenied
from complaints.outbox import outbox_send_due, outbox_write
from complaints.models import Complaint, ComplaintEvent, Outbox, State
from complaints.services import complaint_confirm, complaint_deny
from complaints.tracking import ALPHABET, confirmation_key, confirmation_key_matches

from .conftest import TVERSKAYA

KEY_FORM = re.compile(rf"[{ALPHABET}]{{4}}(?:-[{ALPHABET}]{{4}}){{3}}")


def state_and_events(complaint):
    complaint.refresh_from_db()
    return complaint.state, complaint.reopen_count, ComplaintEvent.objects.filter(complaint=complaint).count()


def wrong_keys(complaint, other):
    key = confirmation_key(complaint)
    return {
        "none": None, "empty": "", "the tracking code": complaint.tracking_code,
        "another complaint's key": confirmation_key(other), "the stored secret": complaint.confirmation_secret,
        "one symbol changed": key[:-1] + ("Z" if key[-1] != "Z" else "Y"), "a symbol short": key[:-1],
        "a group more": key + "-AAAA", "very long": key * 500,
    }


@pytest.fixture
def two_answered(answered, report):
    other = report()
    return answered, other


@pytest.mark.parametrize("action", ["confirm", "deny"])
@pytest.mark.parametrize("wrong", ["none", "empty", "the tracking code", "another complaint's key", "the stored secret",
                                   "one symbol changed", "a symbol short", "a group more", "very long"])
def test_the_code_without_the_key_confirms_and_denies_nothing(client, two_answered, action, wrong):
    complaint, other = two_answered
    before = state_and_events(complaint)
    key = wrong_keys(complaint, other)[wrong]
    data = {"reason": "Не решено"} if action == "deny" else {}
    if key is not None:
        data["key"] = key
    response = client.post(f"/c/{complaint.tracking_code}/{action}/", data, follow=True)
    assert response.status_code == 200
    assert "alert-danger" in response.content.decode()
    assert state_and_events(complaint) == before
    service = complaint_confirm if action == "confirm" else complaint_deny
    with pytest.raises(ComplaintPermissionDenied):
        service(tracking_code=complaint.tracking_code, key=key)
    assert state_and_events(complaint) == before


@pytest.mark.parametrize("typed", [str, str.lower, lambda k: k.replace("-", " "), lambda k: k.replace("-", ""),
                                   lambda k: f"  {k.lower().replace('-', '_')}  "])
@pytest.mark.parametrize("action, state", [("confirm", State.RESOLVED), ("deny", State.REOPENED)])
def test_the_key_however_typed_confirms_or_denies(client, answered, typed, action, state):
    response = client.post(f"/c/{answered.tracking_code.lower()}/{action}/",
                           {"key": typed(confirmation_key(answered)), "reason": "Мусор снова лежит"}, follow=True)
    assert "alert-success" in response.content.decode()
    answered.refresh_from_db()
    assert answered.state == state


def test_the_page_asks_for_the_key_and_shows_none(client, answered):
    page = client.get(f"/c/{answered.tracking_code}/").content.decode()
    assert page.count('name="key"') == 2 and "Ключ подтверждения" in page
    assert confirmation_key(answered) not in page and answered.confirmation_secret not in page


def test_the_resident_sees_the_key_once_after_filing(client, db):
    response = client.post("/report/", {"lon": TVERSKAYA[0], "lat": TVERSKAYA[1], "category": "yard-rubbish",
                                        "description": "Мусор во дворе"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    body = response.json()
    complaint = Complaint.objects.get(tracking_code=body["tracking_code"])
    assert KEY_FORM.fullmatch(body["confirmation_key"])
    assert confirmation_key_matches(complaint, body["confirmation_key"])
    assert body["confirmation_key"] not in client.get(body["url"]).content.decode()


def test_the_key_is_in_no_public_output_nor_staff_page(client, answered):
    key, secret = confirmation_key(answered), answered.confirmation_secret
    dispatcher = get_user_model().objects.create_superuser("t-web-key-admin", password="x")
    staff = Client()
    staff.force_login(dispatcher)
    reads = [client.get(f"/c/{answered.tracking_code}/"), client.get(f"/map/complaints/{answered.pk}/"),
             client.get("/stats/"), client.get("/open311/v2/requests.json"), client.get("/open311/v2/requests.xml"),
             client.get(f"/open311/v2/requests/{answered.pk}.json"),
             client.get("/open311/v2/servicerequestupdates.xml"),
             staff.get("/staff/", {"state": "all"}), staff.get(f"/staff/t/{answered.pk}/"),
             staff.get("/staff/tickets.csv", {"state": "all"}),
             staff.get(f"/admin/complaints/complaint/{answered.pk}/change/"),
             staff.get("/admin/complaints/complaint/")]
    for response in reads:
        assert response.status_code == 200, response
        body = b"".join(response.streaming_content) if response.streaming else response.content
        text = body.decode()
        for secret_text in (key, key.replace("-", ""), key.lower(), secret):
            assert secret_text not in text, (response, secret_text)


def test_each_stored_complaint_gets_a_secret_of_its_own_from_the_database(report):
    """Rows written without the ORM (and, by migration 0005, each complaint stored before) get a random secret from
    the column's default."""
    template = report()
    columns = [f.column for f in Complaint._meta.concrete_fields
               if f.name not in ("id", "confirmation_secret", "tracking_code", "token")]
    with connection.cursor() as cur:
        for n in range(3):
            cur.execute(f"INSERT INTO complaints_complaint (tracking_code, token, {', '.join(columns)}) "
                        f"SELECT %s, %s, {', '.join(columns)} FROM complaints_complaint WHERE id = %s",
                        [f"T-WEB-KEY-{n}", f"t-web-key-{n}", template.pk])
    secrets = list(Complaint.objects.filter(tracking_code__startswith="T-WEB-KEY-")
                   .values_list("confirmation_secret", flat=True))
    assert len(set(secrets)) == 3 and all(re.fullmatch("[0-9a-f]{32}", s) for s in secrets)


def test_residents_mailed_before_there_were_keys_get_their_key(report, answered):
    """A mail sent without the key (the migration to the outbox writes these as `key_only` tracking mails) is sent
    again, whatever the complaint's age, while it is not closed."""
    old_open = report(email="open@example.org")
    old_closed = report(email="closed@example.org")
    Complaint.objects.filter(pk=old_closed.pk).update(state=State.RESOLVED)
    long_ago = timezone.now() - datetime.timedelta(days=400)
    Complaint.objects.filter(pk__in=[old_open.pk, old_closed.pk]).update(submitted_at=long_ago)
    Outbox.objects.all().delete()  # their first mails (sent long ago, without the key)
    for complaint in (old_open, old_closed):
        outbox_write(kind="tracking", recipient=complaint.email, dedupe_key=f"tracking-key:{complaint.pk}",
                     complaint=complaint, context={"key_only": True})
    assert outbox_send_due().sent == 1
    (message,) = mail.outbox
    assert message.to == ["open@example.org"] and confirmation_key(old_open) in message.body
    assert Outbox.objects.get(complaint=old_closed).state == "cancelled"
    assert outbox_send_due().sent == 0  # once
