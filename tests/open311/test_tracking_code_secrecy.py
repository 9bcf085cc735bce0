"""The tracking code is the resident's key: whoever holds it may confirm or deny the department's answer (on the
site, /c/<code>/). Open311 names a request by its numeric id, and no Open311 answer ever carries a tracking code:
not as an id, not in a field, not inside free text (an answer, a hand-over reason, a duplicate's history line).
"""
import json
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest

from complaints.models import Complaint
from complaints.services import (complaint_answer, complaint_confirm, complaint_create, complaint_deny,
                                 complaint_mark_duplicate, complaint_take, complaint_transfer)
from complaints.tracking import confirmation_key
from facilities.models import Department

from .conftest import ARBAT, SERVICE, TVERSKOY, form, image_file

pytestmark = pytest.mark.django_db
BASE = "/open311/v2"


def forms_of(code):
    """Every way a code could be written: as stored, without dashes, in lower case."""
    bare = code.replace("-", "")
    return {code, bare, code.lower(), bare.lower()}


def assert_no_code(body, codes, where):
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    for code in codes:
        for written in forms_of(code):
            assert written not in text, (where, written)


def create(service, point=TVERSKOY, **extra):
    return complaint_create(category=service, point=point, description="Яма", attributes={"kind": "hole"},
                            source="test", **extra)


@pytest.fixture
def history(service, dispatcher):
    """Two complaints that went through every public kind of change, with their codes quoted wherever staff and
    residents write free text; the second is marked a duplicate of the first."""
    first = create(service, photos=[image_file()], address_string="Красная площадь")
    second = create(service, point=ARBAT)
    code, other = first.tracking_code, second.tracking_code
    complaint_mark_duplicate(complaint=second, user=dispatcher, of=first)  # its history line names the original
    complaint_take(complaint=first, user=dispatcher)
    elsewhere = Department.objects.exclude(pk=first.department_id).first()
    complaint_transfer(complaint=first, user=dispatcher, department=elsewhere,
                       reason=f"Обращение {code} (и {other}) не наше")
    complaint_take(complaint=first, user=dispatcher)
    complaint_answer(complaint=first, user=dispatcher, text=f"По обращению {code}: яму заделали.",
                     photo=image_file("answer.png", "PNG"))
    complaint_deny(tracking_code=code, key=confirmation_key(first), reason=f"Мой код {code.lower()}, яма на месте")
    complaint_take(complaint=first, user=dispatcher)
    complaint_answer(complaint=first, user=dispatcher, text=f"Ответ на {code}, теперь точно.")
    complaint_confirm(tracking_code=code, key=confirmation_key(first))
    return Complaint.objects.get(pk=first.pk), Complaint.objects.get(pk=second.pk)


def test_no_read_shows_a_tracking_code(client, service, history):
    first, second = history
    codes = [first.tracking_code, second.tracking_code]
    ids = f"{first.pk},{second.pk}"
    reads = [("discovery", {}), ("services", {}), (f"services/{SERVICE}", {}),
             ("requests", {}), ("requests", {"locale": "en"}), ("requests", {"service_request_id": ids}),
             ("requests", {"status": "closed"}), ("requests", {"lat": TVERSKOY[1], "long": TVERSKOY[0]}),
             (f"requests/{first.pk}", {}), (f"requests/{second.pk}", {"locale": "en"}),
             (f"tokens/{first.token}", {}), (f"tokens/{second.token}", {}),
             ("servicerequestupdates", {}), ("servicerequestupdates", {"locale": "en"}),
             # Errors too: a code sent where an id belongs is not echoed back.
             (f"requests/{first.tracking_code}", {}), ("requests", {"service_request_id": first.tracking_code})]
    for path, params in reads:
        for fmt in ("json", "xml"):
            response = client.get(f"{BASE}/{path}.{fmt}", params)
            assert response.status_code in (200, 400, 404), (path, fmt, response.status_code)
            assert_no_code(response.content, codes, (path, params, fmt))

    # The requests are all there, by id, and the text around the removed codes is kept.
    rows = {r["service_request_id"]: r for r in client.get(f"{BASE}/requests.json",
                                                           {"service_request_id": ids}).json()}
    assert set(rows) == {str(first.pk), str(second.pk)}
    assert rows[str(first.pk)]["status_notes"] == "Ответ на [код обращения скрыт], теперь точно."
    assert rows[str(first.pk)]["media_url"] == f"http://testserver/photos/{first.photos.get(answer=None).pk}/"
    updates = client.get(f"{BASE}/servicerequestupdates.json", {"locale": "en"}).json()
    duplicate = [u for u in updates if u["service_request_id"] == str(second.pk)]
    assert [(u["external_status_code"], u["description"]) for u in duplicate] == [
        ("duplicate", f"Duplicate of request {first.pk}")]
    mine = [u for u in updates if u["service_request_id"] == str(first.pk)]
    assert [u["external_status_code"] for u in mine] == [
        "in_progress", "transferred", "in_progress", "answered", "reopened", "in_progress", "answered", "resolved"]
    assert mine[4]["description"] == "Мой код [tracking code removed], яма на месте"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_post_answer_carries_the_id_not_the_code(client, service, api_key, fmt):
    response = client.post(f"{BASE}/requests.{fmt}", urlencode(form(api_key)),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 201, response.content
    complaint = Complaint.objects.get()
    assert_no_code(response.content, [complaint.tracking_code], "POST")
    if fmt == "json":
        assert response.json()[0]["service_request_id"] == str(complaint.pk)
    else:
        assert ET.fromstring(response.content).findtext("request/service_request_id") == str(complaint.pk)
    assert json.loads(client.get(f"{BASE}/requests/{complaint.pk}.json").content)[0]["service_request_id"] == str(
        complaint.pk)
