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
