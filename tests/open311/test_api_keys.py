"""Keys for integrators: `manage.py create_api_key NAME` prints the key once and stores only its SHA-256."""
import hashlib
import io

import pytest
from django.core.management import CommandError, call_command

from open311.keys import api_key_check
from open311.models import ApiKey

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_the_key_once_and_stores_its_digest():
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "fixmystreet-moscow", stdout=out, stderr=err)
    raw = out.getvalue().strip()
    assert len(raw) >= 40 and "\n" not in raw
    key = ApiKey.objects.get(name="fixmystreet-moscow")
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest() and key.prefix == raw[:8]
    assert raw not in {key.name, key.key_hash}  # the clear key is nowhere in the row
    assert api_key_check(raw) == key and api_key_check(raw + "x") is None
    key.active = False
    key.save()
    assert api_key_check(raw) is None


def test_create_api_key_refuses_a_taken_name():
    call_command("create_api_key", "twice", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="exists already"):
        call_command("create_api_key", "twice", stdout=io.StringIO(), stderr=io.StringIO())


def test_admin_issues_a_key_and_shows_it_once(admin_client):
    response = admin_client.post("/admin/open311/apikey/add/", {"name": "from-admin"}, follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    raw = shown[0].split(": ", 1)[1].split(" ")[0]
    key = ApiKey.objects.get(name="from-admin")
    assert api_key_check(raw) == key
    page = admin_client.get(f"/admin/open311/apikey/{key.pk}/change/").content.decode()
    assert raw not in page and key.key_hash not in page


def issue(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue().strip()


@pytest.mark.parametrize("flag", ["--rotate", "--exists-ok"])
def test_create_api_key_in_a_script_that_runs_twice(flag):
    """The first run issues a key; the second rotates it (the old key stops working) or leaves it."""
    first, said = issue("twice-script", flag)
    assert "issued" in said and api_key_check(first).name == "twice-script"
    second, said = issue("twice-script", flag)
    if flag == "--rotate":
        assert "rotated" in said and "no longer works" in said
        assert second and second != first
        assert api_key_check(first) is None and api_key_check(second).name == "twice-script"
    else:
        assert second == "" and "left as it is" in said
        assert api_key_check(first).name == "twice-script"
    assert ApiKey.objects.filter(name="twice-script").count() == 1


def test_rotate_keeps_the_rate_limit_unless_given_and_reactivates():
    issue("rotating", "--rate-limit", "120/m")
    key = ApiKey.objects.get(name="rotating")
    key.active = False
    key.save()
    raw, said = issue("rotating", "--rotate")
    assert "reactivated" in said
    key.refresh_from_db()
    assert key.active and key.rate_limit == "120/m" and api_key_check(raw) == key
    issue("rotating", "--rotate", "--rate-limit", "5000/h")
    key.refresh_from_db()
    assert key.rate_limit == "5000/h"


@pytest.mark.parametrize("args, message", [
    (["taken"], "--rotate replaces it"),
    (["taken", "--rotate", "--rate-limit", "lots"], "--rate-limit must be a rate"),
    (["", "--rotate"], "NAME must be 1 to 100 characters"),
    (["x" * 101, "--rotate"], "NAME must be 1 to 100 characters"),
])
def test_create_api_key_bad_input_changes_nothing(args, message):
    raw, _ = issue("taken")
    before = list(ApiKey.objects.values_list("name", "key_hash", "rate_limit", "active"))
    with pytest.raises(CommandError, match=message):
        issue(*args)
    assert list(ApiKey.objects.values_list("name", "key_hash", "rate_limit", "active")) == before
    assert api_key_check(raw).name == "taken"


def test_rotate_and_exists_ok_are_exclusive():
    with pytest.raises(CommandError, match="not allowed with"):
        issue("both", "--rotate", "--exists-ok")
    assert not ApiKey.objects.filter(name="both").exists()
