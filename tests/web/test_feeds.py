"""Atom feeds, no login: a complaint's public history, a district's and a category group's new problems. They are
well-formed Atom whatever residents wrote (markup, CDATA ends, control characters, a tracking code, an address),
carry no contact data or tracking code, and link to the public pages by number."""
import xml.etree.ElementTree as ET

import pytest

from complaints.models import Complaint
from complaints.services import complaint_take
from facilities.models import AdminArea
from tests.complaints.factories import make_user

pytestmark = pytest.mark.django_db
ATOM = "{http://www.w3.org/2005/Atom}"

HOSTILE = [
    "<script>alert(1)</script>", "]]><evil/>", "&amp; &lt; &#0; &#x1;", "\x0bвертикальная\x0cтабуляция\x1f",
    "<![CDATA[x]]>", '"><img src=x onerror=alert(1)>', "\ufffe\uffff", "строка\u2028разрыв",
]


def feed(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("application/atom+xml")
    return response.content.decode(), ET.fromstring(response.content)


@pytest.mark.parametrize("text", HOSTILE)
def test_feeds_are_well_formed_and_escaped_whatever_was_written(client, report, text):
    from django.db import connection

    complaint = report(email="private@example.org", phone="+7 900 000-00-00")
    with connection.cursor() as cur:  # text stored before today's checks, as the database may hold it
        cur.execute("UPDATE complaints_complaint SET description = %s WHERE id = %s",
                    [f"{text} код {complaint.tracking_code}", complaint.pk])
    district = Complaint.objects.get(pk=complaint.pk).area_id
    for url in (f"/feeds/complaint/{complaint.pk}/", f"/feeds/district/{district}/",
                f"/feeds/group/{complaint.category.group_key}/"):
        raw, root = feed(client, url)
        assert root.tag == f"{ATOM}feed"
        for secret in (complaint.tracking_code, "private@example.org", "+7 900", complaint.token):
            assert secret not in raw
        assert "<script>" not in raw and "<evil/>" not in raw and "<img" not in raw


def test_a_complaint_feed_lists_its_public_history(client, report):
    complaint = report()
    user = make_user("t-feed-staff", departments=[complaint.department])
    complaint_take(complaint=complaint, user=user)
    _raw, root = feed(client, f"/feeds/complaint/{complaint.pk}/")
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == 3  # filed, routed, taken
    links = {e.find(f"{ATOM}link").get("href") for e in entries}
    assert links == {f"http://testserver/n/{complaint.pk}/"}


def test_district_and_group_feeds_list_only_theirs(client, report, category):
    here = report()
    _raw, root = feed(client, f"/feeds/district/{here.area_id}/")
    ids = [e.find(f"{ATOM}id").text for e in root.findall(f"{ATOM}entry")]
    assert f"complaint-{here.pk}" in ids
    other = AdminArea.objects.filter(level="district").exclude(pk=here.area_id).first()
    _raw, root = feed(client, f"/feeds/district/{other.pk}/")
    assert f"complaint-{here.pk}" not in [e.find(f"{ATOM}id").text for e in root.findall(f"{ATOM}entry")]
    _raw, root = feed(client, f"/feeds/group/{category.group_key}/")
    assert f"complaint-{here.pk}" in [e.find(f"{ATOM}id").text for e in root.findall(f"{ATOM}entry")]


def test_hidden_complaints_are_in_no_feed(client, report):
    complaint = report()
    Complaint.objects.filter(pk=complaint.pk).update(state="hidden")
    assert client.get(f"/feeds/complaint/{complaint.pk}/").status_code == 404
    raw, _root = feed(client, f"/feeds/district/{complaint.area_id}/")
    assert f"complaint-{complaint.pk}<" not in raw


@pytest.mark.parametrize("url", ["/feeds/complaint/999999999/", "/feeds/district/999999999/",
                                 "/feeds/group/no such group/", "/feeds/group/%00/"])
def test_unknown_feeds_are_404(client, url):
    assert client.get(url).status_code == 404
