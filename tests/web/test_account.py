"""The resident's account without a password: a sign-in link by mail, single use, expiring, rate-limited, and the
same answer for every address (no enumeration); signed in, "my complaints" lists those filed with the address and
"my follows" what it follows, and nobody else's."""
import datetime
import re

import pytest
from django.middleware.csrf import get_token  # noqa: F401 - the CSRF machinery the forms use
from django.utils import timezone, translation

from complaints.models import Follow, Outbox, SignInLink, Subscription
from complaints.notify import SIGNIN, signin_token
from complaints.outbox import _kinds

pytestmark = pytest.mark.django_db


def signin_mail():
    row = Outbox.objects.filter(kind=SIGNIN).latest("id")
    with translation.override(row.language or "ru"):
        return row, _kinds()[row.kind](row)


def link_path(message):
    return re.search(r"https?://[^/\s]+(/account/enter/\S+/)", message.body).group(1)


def test_sign_in_by_link_opens_my_complaints_and_my_follows(client, report):
    mine = report(email="Me@Example.org")
    someone_elses = report(email="other@example.org")
    followed = report()
    Follow.objects.create(complaint=followed, email="me@example.org", state=Subscription.ACTIVE)
    assert client.post("/account/", {"email": "me@example.org"}).status_code == 200
    _row, message = signin_mail()
    path = link_path(message)
    assert client.get(path).status_code == 200  # a button: opening the link does not use it
    assert client.get("/account/").content.decode().count("signin-form") == 1  # not signed in yet
    assert client.post(path).status_code == 302
    page = client.get("/account/").content.decode()
    assert f"/c/{mine.tracking_code}/" in page and f"/n/{followed.pk}/" in page
    assert someone_elses.tracking_code not in page and f"№ {someone_elses.pk}<" not in page
    assert "/unsubscribe/" in page
    client.post("/account/out/")
    assert mine.tracking_code not in client.get("/account/").content.decode()


def test_a_sign_in_link_works_once(client, report):
    client.post("/account/", {"email": "me@example.org"})
    _row, message = signin_mail()
    path = link_path(message)
    assert client.post(path).status_code == 302
    other = type(client)()
    assert other.post(path).status_code == 400  # replayed
    assert other.get(path).status_code == 400


def test_an_expired_sign_in_link_is_refused_and_no_longer_mailed(client):
    client.post("/account/", {"email": "me@example.org"})
    row, message = signin_mail()
    SignInLink.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert client.post(link_path(message)).status_code == 400
    with translation.override("ru"):
        assert _kinds()[SIGNIN](row) is None  # a mail still queued is cancelled


@pytest.mark.parametrize("tamper", [
    lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"), lambda t: "1" + t, lambda t: t.split("-")[0] + "-",
    lambda t: "-" + t.split("-")[1], lambda t: "99999999999999999999-" + t.split("-")[1], lambda t: "abc",
    lambda t: str(int(t.split("-")[0]) + 1) + "-" + t.split("-")[1],  # another link's number, this one's code
])
def test_a_tampered_sign_in_link_is_refused(client, tamper):
    client.post("/account/", {"email": "me@example.org"})
    client.post("/account/", {"email": "someone@example.org"})
    first = SignInLink.objects.order_by("id").first()
    bad = tamper(signin_token(first))
    assert client.post(f"/account/enter/{bad}/").status_code in (400, 404)
    assert SignInLink.objects.filter(used_at__isnull=False).count() == 0
    assert "signin-form" in client.get("/account/").content.decode()


def _normalised(response):
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def test_the_answer_is_the_same_for_every_address(client, report):
    """Whether an address reported, follows or was never seen: the same status, page and work (one mail)."""
    report(email="known@example.org")
    known = client.post("/account/", {"email": "known@example.org"})
    unknown = client.post("/account/", {"email": "never-seen@example.org"})
    assert known.status_code == unknown.status_code == 200
    assert _normalised(known) == _normalised(unknown)
    assert Outbox.objects.filter(kind=SIGNIN).count() == 2


def test_sign_in_requests_are_rate_limited_per_client_and_per_address(client, settings):
    settings.LIMIT_FOLLOWS, settings.LIMIT_MAILS_PER_ADDRESS = "3/h", "2/h"
    codes = [client.post("/account/", {"email": "victim@example.org"}, REMOTE_ADDR=f"192.0.2.{i}").status_code
             for i in range(1, 4)]
    assert codes == [200, 200, 429]
    codes = [client.post("/account/", {"email": f"a{i}@example.org"}).status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]
    assert Outbox.objects.filter(kind=SIGNIN).count() == 5


@pytest.mark.parametrize("address", ["me@example.org\r\nBcc: v@example.org", "a@b.org, c@d.org", "x", ""])
def test_a_bad_address_gets_a_clear_error_and_no_mail(client, address):
    response = client.post("/account/", {"email": address})
    assert response.status_code == 400 and "signin-error" in response.content.decode()
    assert not Outbox.objects.filter(kind=SIGNIN).exists() and not SignInLink.objects.exists()
