"""Following, supporting and unsubscribing on the residents' pages, and the attacks on them: header injection in
addresses, tampered and replayed links, follow-spam (per client and per address), "me too" stuffing; the public
page by number shows no tracking code. (The mails themselves over SMTP: tests/queue/test_event_mails.py.)"""
import pytest
from django.core import signing
from django.utils import translation

from complaints.models import Follow, Outbox, Subscription, Support
from complaints.notify import (ALERT_CONFIRM, FOLLOW_CONFIRM, alert_request, alert_token, follow_request,
                               follow_token, unsubscribe_token)
from complaints.outbox import _kinds

pytestmark = pytest.mark.django_db


def rendered(row):
    with translation.override(row.language or "ru"):
        return _kinds()[row.kind](row)


def confirm_rows():
    return list(Outbox.objects.filter(kind=FOLLOW_CONFIRM))


@pytest.fixture
def complaint(report):
    return report(email="owner@example.org")


def test_the_public_page_by_number_has_the_follow_box_and_no_tracking_code(client, complaint):
    page = client.get(f"/n/{complaint.pk}/").content.decode()
    assert complaint.tracking_code not in page and "owner@example.org" not in page
    assert f'action="/n/{complaint.pk}/follow/"' in page and f'action="/n/{complaint.pk}/support/"' in page
    assert "confirm-form" not in page  # no confirmation key forms on the public page
    assert f'href="/feeds/complaint/{complaint.pk}/"' in page
    own = client.get(f"/c/{complaint.tracking_code}/").content.decode()
    assert f'action="/n/{complaint.pk}/follow/"' in own


def test_following_is_double_opt_in(client, complaint):
    response = client.post(f"/n/{complaint.pk}/follow/", {"email": " Fan@Example.ORG "})
    assert response.status_code == 302 and response["Location"] == f"/n/{complaint.pk}/"
    follow = Follow.objects.get(complaint=complaint)
    assert follow.email == "fan@example.org" and follow.state == Subscription.PENDING
    [row] = confirm_rows()
    message = rendered(row)
    link = next(w for w in message.body.split() if "/follow/" in w)
    assert client.get(link.split("8000", 1)[1]).status_code == 302
    follow.refresh_from_db()
    assert follow.state == Subscription.ACTIVE
    assert rendered(row) is None  # a confirmation mail still queued is no longer due
    assert client.get(link.split("8000", 1)[1]).status_code == 302  # a replay changes nothing
    assert Follow.objects.get(pk=follow.pk).state == Subscription.ACTIVE
    # Asking again, already following: the same answer, and no mail (nothing to learn, nothing to spam).
    assert client.post(f"/n/{complaint.pk}/follow/", {"email": "fan@example.org"}).status_code == 302
    assert len(confirm_rows()) == 1


def test_asking_twice_the_same_day_mails_one_confirmation(client, complaint):
    for _ in range(3):
        client.post(f"/n/{complaint.pk}/follow/", {"email": "twice@example.org"})
    assert len(confirm_rows()) == 1


@pytest.mark.parametrize("address", [
    "a@example.org\r\nBcc: victim@example.org", "a@example.org\nBcc: victim@example.org",
    "a@example.org\rX-Injected: 1", "victim@example.org, other@example.org", "victim@example.org; other@example.org",
    "Name <victim@example.org>", '"a"@example.org', "a@example.org\x00", "a@exam\u2028ple.org",
    "a@example.org\u0085Bcc: v@example.org", "not-an-address", "", "a" * 250 + "@example.org", "@example.org",
])
def test_addresses_that_could_inject_headers_are_refused(client, complaint, address):
    response = client.post(f"/n/{complaint.pk}/follow/", {"email": address}, follow=True)
    assert response.status_code == 200
    assert "alert-danger" in response.content.decode()
    assert not Follow.objects.exists() and not confirm_rows()


@pytest.mark.parametrize("tamper", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # the signature changed
    lambda t: signing.dumps(999999, salt="complaints.notify.follow")[:-2] + t[-2:],  # another value, old signature
    lambda t: signing.dumps(1, salt="another.salt"),  # signed for another purpose
    lambda t: "",
    lambda t: "x" * 3000,
    lambda t: t.replace(":", "::", 1),
    lambda t: "../../admin/",
])
def test_a_tampered_confirmation_link_is_refused(client, complaint, tamper):
    follow = follow_request(complaint=complaint, email="fan@example.org")
    bad = tamper(follow_token(follow))
    response = client.get(f"/follow/{bad}/") if bad and "/" not in bad else None
    if response is not None:
        assert response.status_code in (400, 404)
    assert Follow.objects.get(pk=follow.pk).state == Subscription.PENDING


def test_links_of_one_purpose_do_not_work_for_another(client, complaint, category):
    alert = alert_request(email="fan@example.org", group=category.group_key)
    follow = follow_request(complaint=complaint, email="fan@example.org")
    # An alert's confirmation token as a follow's, a follow's as an unsubscription, and the other way round.
    assert client.get(f"/follow/{alert_token(alert)}/").status_code == 400
    assert client.get(f"/alerts/{follow_token(follow)}/").status_code == 400
    assert client.post(f"/unsubscribe/{follow_token(follow)}/").status_code == 400
    assert Follow.objects.get(pk=follow.pk).state == Subscription.PENDING
    assert Outbox.objects.filter(kind=ALERT_CONFIRM).count() == 1


def test_an_expired_confirmation_link_is_refused(client, complaint, settings):
    import time

    follow = follow_request(complaint=complaint, email="fan@example.org")
    token = follow_token(follow)
    real = time.time
    try:
        time.time = lambda: real() + 8 * 86400
        assert client.get(f"/follow/{token}/").status_code == 400
    finally:
        time.time = real
    assert Follow.objects.get(pk=follow.pk).state == Subscription.PENDING


def test_unsubscribing_needs_a_post_and_a_signed_link(client, complaint):
    Follow.objects.create(complaint=complaint, email="fan@example.org", state=Subscription.ACTIVE)
    token = unsubscribe_token(complaint_id=complaint.pk, email="fan@example.org")
    assert client.get(f"/unsubscribe/{token}/").status_code == 200  # a mail scanner's GET changes nothing
    assert Follow.objects.get(email="fan@example.org").state == Subscription.ACTIVE
    # Another address's payload with this link's signature: refused.
    other = unsubscribe_token(complaint_id=complaint.pk, email="else@example.org")
    forged = other.split(":", 1)[0] + ":" + token.split(":", 1)[1]
    assert client.post(f"/unsubscribe/{forged}/").status_code == 400
    csrf_client = type(client)(enforce_csrf_checks=True)
    assert csrf_client.post(f"/unsubscribe/{token}/").status_code == 200  # one click, from a mail client
    assert Follow.objects.get(email="fan@example.org").state == Subscription.STOPPED


def test_follow_spam_is_limited_per_client(client, report, settings):
    settings.LIMIT_FOLLOWS = "3/h"
    complaints = [report() for _ in range(4)]
    codes = [client.post(f"/n/{c.pk}/follow/", {"email": f"v{i}@example.org"}).status_code
             for i, c in enumerate(complaints)]
    assert codes == [302, 302, 302, 429]
    assert len(confirm_rows()) == 3


def test_follow_spam_at_one_address_is_limited_from_any_client(client, report, settings):
    """Mailing confirmations to a victim from many addresses: the per-address limit holds."""
    settings.LIMIT_MAILS_PER_ADDRESS = "2/h"
    complaints = [report() for _ in range(3)]
    codes = [client.post(f"/n/{c.pk}/follow/", {"email": "victim@example.org"},
                         REMOTE_ADDR=f"192.0.2.{i + 1}").status_code for i, c in enumerate(complaints)]
    assert codes == [302, 302, 429]
    assert len(confirm_rows()) == 2


def test_me_too_counts_once_per_client_and_is_limited(client, complaint, settings):
    settings.LIMIT_SUPPORTS = "3/h"
    for _ in range(2):
        assert client.post(f"/n/{complaint.pk}/support/").status_code == 302
    assert Support.objects.filter(complaint=complaint).count() == 1
    assert client.post(f"/n/{complaint.pk}/support/", REMOTE_ADDR="192.0.2.9").status_code == 302
    assert Support.objects.filter(complaint=complaint).count() == 2
    assert "127.0.0.1" not in set(Support.objects.values_list("client", flat=True))  # only a keyed hash is kept
    assert client.post(f"/n/{complaint.pk}/support/").status_code == 302
    assert client.post(f"/n/{complaint.pk}/support/").status_code == 429
    page = client.get(f"/n/{complaint.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "2 residents say" in page


def test_a_hidden_complaint_can_not_be_followed_or_supported(client, complaint):
    from complaints.models import Complaint

    Complaint.objects.filter(pk=complaint.pk).update(state="hidden")
    assert client.get(f"/n/{complaint.pk}/").status_code == 404
    assert client.post(f"/n/{complaint.pk}/follow/", {"email": "fan@example.org"}).status_code == 404
    assert client.post(f"/n/{complaint.pk}/support/").status_code == 404
    assert not Follow.objects.exists() and not Support.objects.exists()
