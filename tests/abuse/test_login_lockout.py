"""Failed logins lock out per user name and per client (django-axes), on the staff login and the admin login:
429 with Retry-After and a page in the visitor's language; an administrator lifts a lockout."""
import datetime

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command

from .conftest import PASSWORD

LOGINS = ["/staff/login/", "/admin/login/"]


@pytest.fixture(autouse=True)
def low_limit(settings):
    settings.AXES_FAILURE_LIMIT = 3


def login(client, url, username, password, ip="192.0.2.10", **extra):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def assert_locked(response, remaining=30 * 60):
    """Locked, with Retry-After what remains of the lockout (by default just locked: the whole cool-off,
    OURCITY_LOGIN_COOLOFF_MINUTES' default), within the few seconds a test takes."""
    assert response.status_code == 429
    assert remaining - 15 <= int(response["Retry-After"]) <= remaining
    assert 'id="lockout"' in response.content.decode()
    return int(response["Retry-After"])


def logged_in(client):
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("url", LOGINS)
def test_failures_for_one_user_lock_it_from_every_address(client, staff_user, admin_user, url):
    user = admin_user if url.startswith("/admin") else staff_user
    answers = [login(client, url, user.username, "wrong", ip=f"192.0.2.{i}").status_code for i in range(3)]
    assert answers == [200, 200, 429]  # the third failure locks
    response = login(client, url, user.username, PASSWORD, ip="198.51.100.50")  # right password, new address
    assert_locked(response)
    assert not logged_in(client)


@pytest.mark.parametrize("url", LOGINS)
def test_failures_from_one_client_lock_it_for_every_user(client, staff_user, admin_user, url):
    user = admin_user if url.startswith("/admin") else staff_user
    for i in range(3):
        login(client, url, f"guess-{i}", "wrong")
    # A spoofed X-Forwarded-For (no trusted proxy) changes nothing: it is the same client.
    response = login(client, url, user.username, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert_locked(response)
    assert not logged_in(client)


@pytest.mark.parametrize("language, text", [("ru", "Вход заблокирован"), ("en", "Login locked")])
def test_the_lockout_page_is_in_the_visitors_language(client, staff_user, language, text):
    for _ in range(4):
        response = login(client, "/staff/login/", staff_user.username, "wrong", HTTP_ACCEPT_LANGUAGE=language)
    assert_locked(response)
    assert text in response.content.decode()


def test_below_the_limit_a_right_password_logs_in(client, staff_user):
    for _ in range(2):
        login(client, "/staff/login/", staff_user.username, "wrong")
    assert login(client, "/staff/login/", staff_user.username, PASSWORD).status_code == 302
    assert logged_in(client)


def test_an_administrator_lifts_a_lockout_in_the_admin(client, staff_user, admin_user):
    for i in range(3):
        login(client, "/staff/login/", staff_user.username, "wrong", ip=f"192.0.2.{i}")
    assert_locked(login(client, "/staff/login/", staff_user.username, PASSWORD, ip="198.51.100.1"))

    admin = type(client)()
    admin.force_login(admin_user)
    changelist = "/admin/axes/accessattempt/"
    page = admin.get(changelist)
    assert page.status_code == 200 and staff_user.username in page.content.decode()
    ids = [str(pk) for pk in AccessAttempt.objects.filter(username=staff_user.username).values_list("pk", flat=True)]
    response = admin.post(changelist, {"action": "delete_selected", "_selected_action": ids, "post": "yes"})
    assert response.status_code == 302
    assert login(client, "/staff/login/", staff_user.username, PASSWORD, ip="198.51.100.1").status_code == 302
    assert logged_in(client)


def test_an_administrator_lifts_a_lockout_with_a_command(client, staff_user):
    for _ in range(3):
        login(client, "/staff/login/", staff_user.username, "wrong")
    assert_locked(login(client, "/staff/login/", staff_user.username, PASSWORD))
    call_command("axes_reset_username", staff_user.username, stdout=open("/dev/null", "w"))
    call_command("axes_reset_ip", "192.0.2.10", stdout=open("/dev/null", "w"))
    assert login(client, "/staff/login/", staff_user.username, PASSWORD).status_code == 302


def age(minutes, **filters):
    """As if the failures of the matching attempt records had happened `minutes` earlier."""
    for attempt in AccessAttempt.objects.filter(**filters):
        attempt.attempt_time -= datetime.timedelta(minutes=minutes)
        attempt.save(update_fields=["attempt_time"])


@pytest.mark.parametrize("url", LOGINS)
def test_retry_after_is_what_remains_of_the_lockout(client, staff_user, admin_user, url):
    user = admin_user if url.startswith("/admin") else staff_user
    for i in range(3):
        login(client, url, user.username, "wrong", ip=f"192.0.2.{i}")
    age(10)
    response = login(client, url, user.username, PASSWORD, ip="198.51.100.2")
    assert_locked(response, remaining=20 * 60)
    assert "20" in response.content.decode()  # the page says the minutes left too
    # Refused attempts during the lockout (wrong or right passwords) do not extend it ...
    for password in ("wrong", PASSWORD, "wrong"):
        assert_locked(login(client, url, user.username, password, ip="198.51.100.3"), remaining=20 * 60)
    # ... so it ends when its cool-off does.
    age(20)
    assert login(client, url, user.username, PASSWORD, ip="198.51.100.4").status_code == 302


@pytest.mark.parametrize("ages, remaining", [
    ((25, 20, 5), 5),      # failures spread out: the lock lifts when the oldest leaves the cool-off
    ((29, 28, 1), 1),
    ((10, 29, 3), 1),     # in any order
    ((0, 0, 0), 30),
    ((20, 20, 20), 10),
])
def test_the_remaining_time_follows_each_failure(client, staff_user, ages, remaining):
    """Three failures (the limit) for one user name from three addresses, at different times: with four, the lock
    would hold until two had left; with three, until the oldest has."""
    for i, minutes in enumerate(ages):
        login(client, "/staff/login/", staff_user.username, "wrong", ip=f"192.0.2.{i}")
        age(minutes, ip_address=f"192.0.2.{i}")
    assert_locked(login(client, "/staff/login/", staff_user.username, PASSWORD, ip="198.51.100.9"),
                  remaining=remaining * 60)


def test_the_longest_of_the_user_and_the_client_lockout_is_the_wait(client, staff_user):
    """The client is locked for 25 more minutes (failures for other names), the user name for 10: 25 it is."""
    for i in range(3):
        login(client, "/staff/login/", f"guess-{i}", "wrong", ip="192.0.2.50")
    age(5, ip_address="192.0.2.50")
    for i in range(3):
        login(client, "/staff/login/", staff_user.username, "wrong", ip=f"192.0.2.{60 + i}")
    age(20, username=staff_user.username)
    assert_locked(login(client, "/staff/login/", staff_user.username, PASSWORD, ip="192.0.2.50"),
                  remaining=25 * 60)
    assert_locked(login(client, "/staff/login/", staff_user.username, PASSWORD, ip="198.51.100.10"),
                  remaining=10 * 60)
