"""Rate limits hold in the shared Redis: reports per client on the web form, Open311 POSTs per API key (with a
per-key override), tracking-code lookups per client. Past a limit: 429 with Retry-After, in Open311's error format
on Open311 URLs and a short page (or the form's JSON errors) in the visitor's language on the web. A client can
not escape by sending X-Forwarded-For, and two processes see one count."""
import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.db import connection

from complaints.models import Complaint
from geo_ourcity.limits import client_ip, client_key
from tests.open311.conftest import make_service
from tests.open311.conftest import form as open311_form

from .conftest import TVERSKAYA

REPORT = {"lon": TVERSKAYA[0], "lat": TVERSKAYA[1], "category": "yard-rubbish", "description": "Мусор во дворе"}
OPEN311 = "/open311/v2/requests.json"


def assert_429(response):
    assert response.status_code == 429
    wait = int(response["Retry-After"])
    assert 1 <= wait <= 3600  # an hour window: a test never straddles two windows
    return wait


# --- the web report form ------------------------------------------------------------------------------

def test_reports_per_client_on_the_web_form(client, db, settings):
    settings.LIMIT_WEB_REPORTS = "3/h"
    before = Complaint.objects.count()
    for _ in range(3):
        assert client.post("/report/", REPORT, HTTP_ACCEPT="application/json").status_code == 200
    response = client.post("/report/", REPORT, HTTP_ACCEPT="application/json")
    assert_429(response)
    assert "Too many requests" in response.json()["errors"]["__all__"][0] or \
        "Слишком много" in response.json()["errors"]["__all__"][0]
    assert Complaint.objects.count() == before + 3  # the limited one stored nothing


@pytest.mark.parametrize("language, text", [("ru", "Слишком много запросов"), ("en", "Too many requests")])
def test_a_limited_page_is_short_and_in_the_visitors_language(client, db, settings, language, text):
    settings.LIMIT_WEB_REPORTS = "1/h"
    client.post("/report/", REPORT, HTTP_ACCEPT_LANGUAGE=language)
    response = client.post("/report/", REPORT, HTTP_ACCEPT_LANGUAGE=language)
    assert_429(response)
    assert response["Content-Type"].startswith("text/html") and text in response.content.decode()


def test_a_spoofed_forwarded_for_does_not_escape_the_limit(client, db, settings):
    settings.LIMIT_WEB_REPORTS = "2/h"
    answers = [client.post("/report/", REPORT, HTTP_ACCEPT="application/json",
                           HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code for i in range(4)]
    assert answers == [200, 200, 429, 429]


def test_behind_a_trusted_proxy_the_client_is_the_address_it_saw(client, db, settings):
    settings.LIMIT_WEB_REPORTS = "2/h"
    settings.TRUSTED_PROXIES = ["127.0.0.1"]  # the test client's REMOTE_ADDR

    def post(chain):
        return client.post("/report/", REPORT, HTTP_ACCEPT="application/json", HTTP_X_FORWARDED_FOR=chain).status_code

    # What the client prepends is not believed: the proxy appended the address it saw, 203.0.113.7.
    assert [post(f"10.0.0.{i}, 203.0.113.7") for i in range(3)] == [200, 200, 429]
    assert post("203.0.113.8") == 200  # another client behind the same proxy has its own count


@pytest.mark.parametrize("remote, chain, trusted, expected", [
    ("192.0.2.1", "203.0.113.9", [], "192.0.2.1"),                          # no trusted proxy: never the header
    ("192.0.2.1", "203.0.113.9", ["10.0.0.0/8"], "192.0.2.1"),              # not from a trusted proxy
    ("10.1.2.3", "203.0.113.9", ["10.0.0.0/8"], "203.0.113.9"),
    ("10.1.2.3", "1.1.1.1, 203.0.113.9, 10.9.9.9", ["10.0.0.0/8"], "203.0.113.9"),  # two proxies
    ("10.1.2.3", "garbage, 203.0.113.9", ["10.0.0.0/8"], "203.0.113.9"),
    ("10.1.2.3", "not-an-address", ["10.0.0.0/8"], "10.1.2.3"),
    ("::1", "2001:db8::5", ["::1"], "2001:db8::5"),
])
def test_client_address(rf, settings, remote, chain, trusted, expected):
    settings.TRUSTED_PROXIES = trusted
    assert client_ip(rf.get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=chain)) == expected


@pytest.mark.parametrize("remote, expected", [
    ("192.0.2.1", "192.0.2.1"), ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"), ("::ffff:192.0.2.9", "192.0.2.9")])
def test_a_per_client_limit_counts_an_ipv6_subscriber_once(rf, remote, expected):
    assert client_key(rf.get("/", REMOTE_ADDR=remote)) == expected


def test_hopping_within_an_ipv6_64_does_not_escape(client, db, settings):
    settings.LIMIT_WEB_REPORTS = "2/h"
    answers = [client.post("/report/", REPORT, HTTP_ACCEPT="application/json",
                           REMOTE_ADDR=f"2001:db8:5:6::{i:x}").status_code for i in range(1, 4)]
    assert answers == [200, 200, 429]


# --- tracking-code lookups ----------------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("get", "/c/{code}/"), ("get", "/c/?code={code}"), ("get", "/c/AAAA-BBBB-CCCC/"),
    ("post", "/c/{code}/confirm/"), ("post", "/c/{code}/deny/"),
])
def test_code_lookups_per_client(client, complaint, settings, method, path):
    settings.LIMIT_CODE_LOOKUPS = "3/h"
    url = path.format(code=complaint.tracking_code)
    for _ in range(3):
        assert getattr(client, method)(url).status_code != 429
    response = getattr(client, method)(url, HTTP_X_FORWARDED_FOR="198.51.100.77")
    assert_429(response)
    assert "Слишком много запросов" in response.content.decode()


def test_every_lookup_path_shares_one_count(client, complaint, settings):
    settings.LIMIT_CODE_LOOKUPS = "3/h"
    code = complaint.tracking_code
    client.get(f"/c/{code}/")
    client.get(f"/c/?code={code}")
    client.get("/c/WRONG-CODE-0000/")
    assert_429(client.post(f"/c/{code}/confirm/"))


# --- Open311 POSTs per API key ------------------------------------------------------------------------

@pytest.fixture
def service(db):
    return make_service()


def test_open311_posts_per_key_in_open311_format(client, service, key_pair, settings):
    settings.LIMIT_OPEN311_POSTS = "2/h"
    _key, raw = key_pair
    for _ in range(2):
        assert client.post(OPEN311, open311_form(raw)).status_code == 201
    response = client.post(OPEN311, open311_form(raw), HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert_429(response)
    assert response.json()[0]["code"] == 429 and "api_key" in response.json()[0]["description"]
    xml = client.post("/open311/v2/requests.xml", open311_form(raw))
    assert_429(xml)
    assert xml["Content-Type"].startswith("text/xml") and b"<errors><error><code>429</code>" in xml.content


def test_a_keys_own_limit_overrides_the_default(client, service, key_pair, settings):
    settings.LIMIT_OPEN311_POSTS = "1/h"
    key, raw = key_pair
    key.rate_limit = "3/h"
    key.save()
    from open311.keys import api_key_issue

    _other, other_raw = api_key_issue(name="abuse-other")
    assert [client.post(OPEN311, open311_form(raw)).status_code for _ in range(4)] == [201, 201, 201, 429]
    # Another key has its own count, at the default.
    assert [client.post(OPEN311, open311_form(other_raw)).status_code for _ in range(2)] == [201, 429]


def test_a_key_rate_limit_is_validated(key_pair):
    from django.core.exceptions import ValidationError

    key, _raw = key_pair
    for bad in ("many", "5", "5/week", "-1/h"):
        key.rate_limit = bad
        with pytest.raises(ValidationError):
            key.full_clean()


def test_limits_are_shared_between_processes(client, service, key_pair, settings):
    """Another process (another app server) counts in the same Redis: its requests use up this one's allowance."""
    settings.LIMIT_OPEN311_POSTS = "3/h"
    key, raw = key_pair
    assert client.post(OPEN311, open311_form(raw)).status_code == 201
    script = (
        "import django; django.setup()\n"
        "from django.test import RequestFactory\n"
        "from geo_ourcity.limits import rate_limited\n"
        f"r = RequestFactory().post('/open311/v2/requests.json')\n"
        f"print([rate_limited(r, group='open311-post', rate='3/h', key={key.pk}) for _ in range(2)])\n")
    # The same database name (so the same key prefix) as this test run's: the other process is one more server.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "geo_ourcity.settings",
           "OURCITY_DB_NAME": connection.settings_dict["NAME"]}
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=django_settings.BASE_DIR, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert out.strip() == "[None, None]"
    assert_429(client.post(OPEN311, open311_form(raw)))


def test_the_open311_limit_is_per_key_not_per_client(client, service, key_pair, settings):
    settings.LIMIT_OPEN311_POSTS = "2/h"
    _key, raw = key_pair
    answers = [client.post(OPEN311, open311_form(raw), REMOTE_ADDR=f"192.0.2.{i}").status_code for i in range(3)]
    assert answers == [201, 201, 429]



def test_create_api_key_takes_a_rate_limit(db):
    from django.core.management import CommandError, call_command

    from open311.models import ApiKey

    call_command("create_api_key", "abuse-cli", "--rate-limit", "120/m", stdout=open("/dev/null", "w"),
                 stderr=open("/dev/null", "w"))
    assert ApiKey.objects.get(name="abuse-cli").rate_limit == "120/m"
    with pytest.raises(CommandError, match="rate"):
        call_command("create_api_key", "abuse-cli-2", "--rate-limit", "lots", stdout=open("/dev/null", "w"))
    assert not ApiKey.objects.filter(name="abuse-cli-2").exists()


@pytest.mark.parametrize("fail_open, expected", [(True, 200), (False, 429)])
def test_an_unreachable_cache_fails_as_configured(client, db, settings, tmp_path, fail_open, expected):
    settings.LIMIT_WEB_REPORTS = "1/h"
    settings.RATELIMIT_FAIL_OPEN = fail_open
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"unix://{tmp_path}/no-redis.sock"}}
    answers = [client.post("/report/", REPORT, HTTP_ACCEPT="application/json").status_code for _ in range(2)]
    assert answers == [expected, expected]


@pytest.mark.parametrize("name, value", [("OURCITY_LIMIT_WEB_REPORTS", "5 per minute"), ("OURCITY_LIMIT_WEB_REPORTS", "5"),
                                         ("OURCITY_TRUSTED_PROXIES", "10.0.0.0/8,proxy.local")])
def test_a_bad_limit_setting_is_refused_naming_the_variable(monkeypatch, name, value):
    from django.core.exceptions import ImproperlyConfigured

    from geo_ourcity.env import env_networks, env_rate

    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        env_networks(name) if name.endswith("PROXIES") else env_rate(name, "5/m")


# --- Open311: wrong api_keys and token lookups per client ---------------------------------------------

def bad_key_forms(raw):
    """Every kind of failed key: missing, empty, blank, wrong, a right key's prefix, a right key with a typo."""
    return [open311_form(None), open311_form(""), open311_form("   "), open311_form("wrong-key"),
            open311_form(raw[:8]), open311_form(raw[:-1] + ("x" if raw[-1] != "x" else "y"))]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_wrong_api_keys_are_limited_per_client(client, service, key_pair, settings, fmt):
    settings.LIMIT_OPEN311_BAD_KEYS = "6/h"
    _key, raw = key_pair
    url = f"/open311/v2/requests.{fmt}"
    before = Complaint.objects.count()
    answers = [client.post(url, data).status_code for data in bad_key_forms(raw)]
    assert answers == [403] * 6
    # Used up: the next guess is refused before it is checked, even a right key (a guesser learns nothing), and
    # a spoofed X-Forwarded-For is the same client.
    for data in (open311_form("another-guess"), open311_form(raw)):
        response = client.post(url, data, HTTP_X_FORWARDED_FOR="198.51.100.3")
        assert_429(response)
        if fmt == "json":
            assert response.json()[0]["code"] == 429 and "api_key" in response.json()[0]["description"]
        else:
            assert response["Content-Type"].startswith("text/xml")
            assert b"<errors><error><code>429</code>" in response.content
    assert Complaint.objects.count() == before
    # Another client is not held by this one's failures, and a right key there is not counted as a failure.
    assert client.post(url, open311_form(raw), REMOTE_ADDR="192.0.2.77").status_code == 201


def test_right_keys_do_not_use_up_the_failures(client, service, key_pair, settings):
    settings.LIMIT_OPEN311_BAD_KEYS = "2/h"
    _key, raw = key_pair
    assert [client.post(OPEN311, open311_form(raw)).status_code for _ in range(4)] == [201] * 4
    assert [client.post(OPEN311, open311_form("wrong")).status_code for _ in range(3)] == [403, 403, 429]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_token_lookups_per_client(client, complaint, settings, fmt):
    settings.LIMIT_OPEN311_TOKEN_LOOKUPS = "4/h"
    tokens = [complaint.token, "0" * 36, "guess", complaint.token.upper()]
    assert [client.get(f"/open311/v2/tokens/{t}.{fmt}").status_code for t in tokens] == [200, 404, 404, 404]
    response = client.get(f"/open311/v2/tokens/{complaint.token}.{fmt}", HTTP_X_FORWARDED_FOR="198.51.100.4")
    assert_429(response)
    if fmt == "json":
        assert response.json()[0]["code"] == 429 and "token" in response.json()[0]["description"]
    else:
        assert b"<errors><error><code>429</code>" in response.content
    assert client.get(f"/open311/v2/tokens/{complaint.token}.{fmt}", REMOTE_ADDR="192.0.2.78").status_code == 200


@pytest.mark.parametrize("name, default", [("LIMIT_OPEN311_BAD_KEYS", "10/m"),
                                           ("LIMIT_OPEN311_TOKEN_LOOKUPS", "60/m")])
def test_the_open311_client_limits_default_and_read_the_environment(name, default):
    script = f"import django; django.setup(); from django.conf import settings; print(settings.{name})"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "geo_ourcity.settings"}
    run = lambda **extra: subprocess.run([sys.executable, "-c", script], env={**env, **extra},  # noqa: E731
                                         cwd=django_settings.BASE_DIR, capture_output=True, text=True, timeout=60)
    assert run().stdout.strip() == default
    assert run(**{f"OURCITY_{name}": "3/h"}).stdout.strip() == "3/h"


# --- what a POST asks of Redis ------------------------------------------------------------------------

def redis_commands():
    from django.core.cache import cache

    stats = cache._cache.get_client(write=True).info("commandstats")  # the same Redis as the limits'
    return {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0)
            for name in ("get", "set", "setnx", "exists", "incr", "incrby", "expire", "expireat", "eval", "evalsha")}


@pytest.mark.parametrize("right_key", [True, False])
def test_a_post_counts_its_limits_with_three_commands(client, service, key_pair, settings, right_key):
    """One pipeline: the wrong-key count is looked at (GET) and the key's count kept (INCRBY, EXPIREAT); a wrong key
    counts one failure (INCRBY, EXPIREAT). Nothing else: no add-then-incr, no look before the key is checked."""
    settings.LIMIT_OPEN311_POSTS = "100/h"
    settings.LIMIT_OPEN311_BAD_KEYS = "100/h"
    _key, raw = key_pair
    data = open311_form(raw if right_key else "wrong")
    data.pop("email", None)  # no tracking mail: the queue's commands are not the limits'
    client.post(OPEN311, data)  # the first POST of a window may do more (nothing today)
    before = redis_commands()
    assert client.post(OPEN311, data).status_code == (201 if right_key else 403)
    used = {name: calls - before[name] for name, calls in redis_commands().items() if calls != before[name]}
    assert used == ({"get": 1, "incrby": 1, "expireat": 1} if right_key else {"incrby": 1, "expireat": 1})
