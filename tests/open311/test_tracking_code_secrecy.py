"""The tracking code names a resident's complaint and the confirmation key closes it: neither shows in any public
output. Open311 names a request by its numeric id and never carries a code: not as an id, not in a field, not
inside free text (an answer, a hand-over reason, a duplicate's history line). And a code or key written into any
public text, in any spelling that the complaint page accepts, is shown nowhere: not on another complaint's page,
in a map popup or tile, in Open311 JSON or XML, the staff CSV, or a mail to anyone else.
"""
import html
import json
import math
import re
import unicodedata
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest
from django.core import mail
from django.test import Client

from complaints.outbox import outbox_send_due as tracking_mail_send_pending
from complaints.models import Complaint, ComplaintEvent, Outbox
from complaints.services import (complaint_answer, complaint_confirm, complaint_create, complaint_deny,
                                 complaint_mark_duplicate, complaint_take, complaint_transfer)
from complaints.tracking import confirmation_key
from complaints.validation import CONTROL_CHARACTERS
from facilities.models import Department

from tests.complaints.spellings import all_spellings, case_and_separator_spellings

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
    codes = [first.tracking_code, second.tracking_code, confirmation_key(first), confirmation_key(second)]
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
    assert_no_code(response.content, [complaint.tracking_code, confirmation_key(complaint)], "POST")
    if fmt == "json":
        assert response.json()[0]["service_request_id"] == str(complaint.pk)
    else:
        assert ET.fromstring(response.content).findtext("request/service_request_id") == str(complaint.pk)
    assert json.loads(client.get(f"{BASE}/requests/{complaint.pk}.json").content)[0]["service_request_id"] == str(
        complaint.pk)


# --- every spelling, in every kind of public text, in every public output -------------------------------------

VICTIM_CODE = "K7MA-HPCE-TX4B"  # many letters with Cyrillic look-alikes


def written_forms(victim):
    """{label: spelling} of the victim's code (every spelling the complaint page accepts, and more) and of its
    confirmation key (every case and separator), as far as a complaint's text can hold it: a spelling with control
    characters in it is refused when it is written (complaints.validation; tests/complaints/test_validation.py)."""
    code = {f"code, {label}": s for label, s in all_spellings(victim.tracking_code).items()}
    key = {f"key, {label}": s for label, s in case_and_separator_spellings(confirmation_key(victim)).items()}
    return {label: s for label, s in {**code, **key}.items() if not CONTROL_CHARACTERS.search(s)}


def texts_of(forms, limit):
    """The spellings as texts of at most `limit` characters, each spelling between words ("… код X, и …")."""
    texts, current = [], ""
    for spelling in forms.values():
        piece = f" код {spelling}, и"
        if current and len(current) + len(piece) > limit:
            texts.append(current)
            current = ""
        current += piece
    return texts + [current]


def readable(response):
    """The text a reader of the response gets: JSON and XML string values, HTML unescaped."""
    content = b"".join(response.streaming_content) if response.streaming else response.content
    content_type = response.get("Content-Type", "")
    text = content.decode("utf-8", "replace")
    if "json" in content_type:
        strings = []

        def walk(value):
            if isinstance(value, dict):
                for item in value.values():
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)
            elif value is not None:
                strings.append(str(value))

        walk(json.loads(text))
        return "\n".join(strings) + "\n" + text
    if "xml" in content_type:
        return "\n".join(ET.fromstring(content).itertext()) + "\n" + text
    return html.unescape(re.sub(r"<br\s*/?>", "\n", text))


def found(text, forms, secrets):
    """The labels of the spellings that the text shows, and the secrets it shows once squeezed (only letters and
    digits, compatibility forms folded, upper case): what a reader could type back in."""
    shown = [label for label, spelling in forms.items() if spelling in text]
    squeezed = re.sub(r"[^0-9A-Z]", "", unicodedata.normalize("NFKC", text).upper())
    shown += [f"squeezed {s}" for s in secrets if s.replace("-", "") in squeezed]
    return shown


def tile_of(lon, lat, z):
    n = 2 ** z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return z, int((lon + 180) / 360 * n), int(y)


@pytest.fixture
def written_everywhere(service, dispatcher):
    """A victim complaint, and two others whose every kind of public text holds every spelling of the victim's code
    and key: the carrier's description, address, attribute answers, hand-over reasons (and so the routing
    explanation), answers and the resident's reason for reopening; a duplicate's history line (as old data stored
    the original's code there)."""
    victim = create(service, email="victim@example.org")
    Complaint.objects.filter(pk=victim.pk).update(tracking_code=VICTIM_CODE)
    victim.refresh_from_db()
    forms = written_forms(victim)
    everything = "".join(texts_of(forms, 100_000))
    assert len(everything) <= 4000

    carrier = complaint_create(category=service, point=TVERSKOY, description=everything,
                               address_string=texts_of(forms, 500)[0],
                               attributes={"kind": "hole", "details": everything,
                                           "plate": texts_of(forms, 1000)[0]},
                               email="carrier@example.org", source="test")
    carrier_key = confirmation_key(carrier)
    departments = list(Department.objects.exclude(pk=carrier.department_id)[:2])
    for n, reason in enumerate(texts_of(forms, 1000)):  # a reason holds at most 1000 characters
        complaint_transfer(complaint=carrier, user=dispatcher, department=departments[n % 2], reason=reason)
    complaint_take(complaint=carrier, user=dispatcher)
    complaint_answer(complaint=carrier, user=dispatcher, text=everything)
    complaint_deny(tracking_code=carrier.tracking_code, key=carrier_key, reason=everything)
    complaint_take(complaint=carrier, user=dispatcher)
    complaint_answer(complaint=carrier, user=dispatcher, text=everything)  # the latest: Open311 status_notes

    duplicate = create(service, point=ARBAT, email="duplicate@example.org")
    complaint_mark_duplicate(complaint=duplicate, user=dispatcher, of=victim)
    ComplaintEvent.objects.filter(complaint=duplicate, kind=ComplaintEvent.Kind.DUPLICATE).update(reason=everything)
    return victim, Complaint.objects.get(pk=carrier.pk), Complaint.objects.get(pk=duplicate.pk), forms


def test_no_public_output_shows_a_code_or_key_written_in_any_spelling(client, written_everywhere, dispatcher):
    victim, carrier, duplicate, forms = written_everywhere
    secrets = [victim.tracking_code, confirmation_key(victim)]
    ids = f"{carrier.pk},{duplicate.pk}"
    staff = Client()
    staff.force_login(dispatcher)
    outputs = {}
    for lang in ("ru", "en"):
        other = Client(headers={"accept-language": lang})
        for who in (carrier, duplicate):
            outputs[f"page of № {who.pk} ({lang})"] = other.get(f"/c/{who.tracking_code}/")
            outputs[f"popup of № {who.pk} ({lang})"] = other.get(f"/map/complaints/{who.pk}/")
        outputs[f"statistics ({lang})"] = other.get("/stats/")
    z, x, y = tile_of(*TVERSKOY, 16)
    outputs["map tile"] = client.get(f"/tiles/complaints/{z}/{x}/{y}.mvt")
    for fmt in ("json", "xml"):
        for path, params in [("requests", {}), ("requests", {"locale": "en"}),
                             ("requests", {"service_request_id": ids}), (f"requests/{carrier.pk}", {}), (f"requests/{duplicate.pk}", {"locale": "en"}),
                             ("servicerequestupdates", {}), ("servicerequestupdates", {"locale": "en"})]:
            outputs[f"Open311 {path}.{fmt} {params}"] = client.get(f"{BASE}/{path}.{fmt}", params)
    outputs["staff CSV"] = staff.get("/staff/tickets.csv", {"state": "all"})

    shown = {}
    for where, response in outputs.items():
        assert response.status_code == 200, where
        leaks = found(readable(response), forms, secrets)
        if leaks:
            shown[where] = leaks
    # The three tracking mails, and the mails of every public change (complaints.notify): none may show the code.
    assert Outbox.objects.filter(kind="tracking").count() == 3 and Outbox.objects.filter(kind="event").exists()
    assert tracking_mail_send_pending().sent == Outbox.objects.count()
    for message in mail.outbox:
        if message.to != [victim.email]:  # mails to anyone but the victim's resident
            leaks = found(message.subject + "\n" + message.body, forms, secrets)
            if leaks:
                shown[f"mail to {message.to}"] = leaks
    assert shown == {}

    # What was written is still there around the removed codes, and the outputs did show the carrier's texts.
    page = readable(outputs[f"page of № {carrier.pk} (en)"])
    assert page.count("код [tracking code removed], и") >= len(forms)
    notes = {r["service_request_id"]: r["status_notes"] for r in outputs[
        f"Open311 requests.json {{'service_request_id': '{ids}'}}"].json()}
    assert notes[str(carrier.pk)].count("код [код обращения скрыт], и") == len(forms)


def test_the_residents_own_views_still_work(client, written_everywhere):
    """The victim's own page shows its code; its own mail carries its code and key; it confirms with its key."""
    victim, carrier, _duplicate, _forms = written_everywhere
    page = client.get(f"/c/{victim.tracking_code}/")
    assert page.status_code == 200 and victim.tracking_code in page.content.decode()
    assert client.get(f"/c/{victim.tracking_code.lower().replace('-', ' ')}/").url == f"/c/{VICTIM_CODE}/"
    tracking_mail_send_pending()
    (own,) = [m for m in mail.outbox if m.to == [victim.email]]
    assert victim.tracking_code in own.body and confirmation_key(victim) in own.body
    carriers = [m for m in mail.outbox if m.to == [carrier.email]]  # its tracking mail, and its changes' mails
    (carriers,) = [m for m in carriers if confirmation_key(carrier) in m.body]  # the key is in one mail only
    assert carrier.tracking_code in carriers.body
