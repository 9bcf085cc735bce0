"""The data-staff queue of registry corrections (staff.corrections, /staff/registry/), in-process: which hand-ons
make a proposed correction (three complaints at one facility handed on to the same other authority do; fewer, split,
outside the window, handed back or hidden do not), the decisions (dismiss with a reason, recorded; a dismissed one
stays out; accept queues the import, for facilities, areas and category rules alike), and who may see and act
(data staff only: 403 for everyone else logged in). The import itself runs on a real worker:
tests/queue/test_registry_corrections.py."""
import datetime

import pytest
from django.conf import settings
from django.utils import timezone

from complaints.services import complaint_hide
from facilities.models import AdminArea, Department
from staff.corrections import CorrectionError, correction_accept, correction_dismiss, corrections_find
from staff.models import RegistryCorrection
from tests.complaints.factories import make_user

from .corrections_helpers import file_at, hand_on, people, school_and_neighbour

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    facility, neighbour = school_and_neighbour()
    return {"facility": facility, "neighbour": neighbour, "point": facility.inside, **people(facility, "t-rq")}


def handed_on(world, n, *, to=None, at=None):
    out = []
    for _ in range(n):
        c = file_at(world["point"], at=at)
        assert c.facility_id == world["facility"].pk and c.department.authority_id == world["facility"].owner_id
        out.append(hand_on(c, world["owner"], to or world["neighbour"], at=at))
    return out


def pending():
    return list(RegistryCorrection.objects.filter(state=RegistryCorrection.State.PENDING))


def test_three_complaints_handed_on_to_one_authority_come_to_the_queue(world):
    handed_on(world, 3)
    assert corrections_find()["new"] == 1
    (item,) = pending()
    assert (item.kind, item.subject_id, item.authority_id, item.registry_authority_id, item.complaints) == (
        "facility", world["facility"].pk, world["neighbour"].authority_id, world["facility"].owner_id, 3)
    assert item.reasons == ["Здание другой школы"] * 3 and item.dataset_code == world["facility"].dataset.code
    assert corrections_find()["new"] == 0 and len(pending()) == 1  # found again: the same one


def _split(world):
    handed_on(world, 2)
    other = Department.objects.exclude(authority__in=[world["facility"].owner_id, world["neighbour"].authority_id]) \
        .filter(authority__kind="district_council").first()
    handed_on(world, 1, to=other)


def _old(world):
    handed_on(world, 3, at=timezone.now() - datetime.timedelta(days=settings.REGISTRY_CORRECTION_WINDOW_DAYS + 2))


def _handed_back(world):
    for c in handed_on(world, 3):
        hand_on(c, make_user(f"t-rq-n{c.pk}", departments=[world["neighbour"]]),
                world["facility"].owner.departments.order_by("pk").first())


def _hidden(world):
    dispatcher = make_user("t-rq-disp", superuser=True)
    for c in handed_on(world, 3)[:2]:
        complaint_hide(complaint=c, user=dispatcher, reason="abuse")


@pytest.mark.parametrize("case", [lambda w: handed_on(w, 2), _split, _old, _handed_back, _hidden],
                         ids=["two only", "split between authorities", "outside the window", "handed back",
                              "hidden"])
def test_what_does_not_come_to_the_queue(world, case):
    case(world)
    corrections_find()
    assert pending() == []


def test_a_dismissed_correction_stays_out_until_as_many_are_handed_on_again(world):
    handed_on(world, 3)
    corrections_find()
    (item,) = pending()
    dismissed = correction_dismiss(correction=item, user=world["data"], reason="  Проверено:  здание школы  ")
    assert (dismissed.state, dismissed.decided_by, dismissed.note) == ("dismissed", world["data"],
                                                                     "Проверено: здание школы")
    assert dismissed.decided_at is not None
    corrections_find()
    assert pending() == []
    handed_on(world, 2, at=timezone.now() + datetime.timedelta(seconds=1))
    corrections_find()
    assert pending() == []
    handed_on(world, 1, at=timezone.now() + datetime.timedelta(seconds=2))
    corrections_find()
    (again,) = pending()
    assert again.pk != item.pk and again.complaints == 3
    assert RegistryCorrection.objects.get(pk=item.pk).state == "dismissed"  # the decision stays recorded


def test_accept_records_who_and_queues_the_import(world):
    handed_on(world, 3)
    corrections_find()
    (item,) = pending()
    accepted = correction_accept(correction=item, user=world["data"])
    assert (accepted.state, accepted.decided_by) == ("queued", world["data"]) and accepted.decided_at
    with pytest.raises(CorrectionError):  # decided already
        correction_accept(correction=item, user=world["data"])
    with pytest.raises(CorrectionError):
        correction_dismiss(correction=item, user=world["data"], reason="late")


@pytest.mark.parametrize("who", ["owner", "other"])
def test_only_data_staff_decide(world, who):
    handed_on(world, 3)
    corrections_find()
    (item,) = pending()
    with pytest.raises(CorrectionError):
        correction_accept(correction=item, user=world[who])
    with pytest.raises(CorrectionError):
        correction_dismiss(correction=item, user=world[who], reason="no")
    assert RegistryCorrection.objects.get(pk=item.pk).state == "pending"


def test_areas_and_category_rules_come_too_and_accepting_them_queues_their_import(world):
    # a district-rule category in Tverskoy, handed on to the okrug's prefecture: the area's jurisdiction
    tverskoy = AdminArea.objects.get(level="district", name="Тверской")
    prefecture = Department.objects.filter(authority=tverskoy.parent.authority).order_by("pk").first()
    council_staff = make_user("t-rq-council", departments=list(tverskoy.authority.departments.all()))
    road_staff = make_user("t-rq-road", superuser=True)
    council = tverskoy.authority.departments.order_by("pk").first()
    for _ in range(3):
        c = file_at((37.6056, 55.7655), code="waste-dump", text="Стихийная свалка строительного мусора")
        assert c.decision.rule == "area" and c.decision.area.level_id == "district"
        hand_on(c, council_staff, prefecture, reason="Неразграниченная территория")
        c = file_at((37.6056, 55.7655), code="road-pothole", text="Яма на проезжей части")
        assert c.decision.rule == "department"
        hand_on(c, road_staff, council, reason="Это дворовый проезд")
    corrections_find()
    found = {i.kind: i for i in pending()}
    assert found["area"].subject_id == tverskoy.pk and found["area"].authority_id == prefecture.authority_id
    assert found["category"].subject_label.startswith("road-pothole") and \
        found["category"].authority_id == tverskoy.authority_id
    for item in found.values():  # the import itself: tests/staff/test_registry_accept.py
        correction_accept(correction=item, user=world["data"])
        assert RegistryCorrection.objects.get(pk=item.pk).state == "queued"


# --- the pages ----------------------------------------------------------------------------------------------

@pytest.fixture
def item(world):
    handed_on(world, 3)
    corrections_find()
    return pending()[0]


def urls(item):
    return [("get", "/staff/registry/"), ("get", f"/staff/registry/{item.pk}/"),
            ("post", f"/staff/registry/{item.pk}/accept/"), ("post", f"/staff/registry/{item.pk}/dismiss/"),
            ("post", "/staff/registry/find/")]


@pytest.mark.parametrize("who", ["owner", "other", "dispatcher"])
def test_staff_who_are_not_data_staff_get_403_and_change_nothing(world, item, client_for, who):
    user = make_user("t-rq-dispatcher", groups=["City dispatchers"]) if who == "dispatcher" else world[who]
    client = client_for(user)
    for method, url in urls(item):
        response = getattr(client, method)(url, {"reason": "no"} if method == "post" else None)
        assert response.status_code == 403, (method, url)
    assert RegistryCorrection.objects.get(pk=item.pk).state == "pending"
    assert 'id="registry-link"' not in client.get("/staff/").content.decode()


def test_anonymous_visitors_are_sent_to_log_in(item, client):
    for method, url in urls(item):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/staff/login/" in response["Location"], (method, url)
    assert RegistryCorrection.objects.get(pk=item.pk).state == "pending"


def test_data_staff_see_the_queue_and_the_reasons(world, item, client_for):
    client = client_for(world["data"])
    assert 'id="registry-link"' in client.get("/staff/").content.decode()
    page = client.get("/staff/registry/").content.decode()
    assert f'data-correction="{item.pk}"' in page and world["neighbour"].authority.short_name in page
    page = client.get(f"/staff/registry/{item.pk}/").content.decode()
    assert "Здание другой школы" in page and 'id="accept"' in page and 'id="dismiss"' in page
    assert client.get("/staff/registry/999999999/").status_code == 404
    assert client.get(f"/staff/registry/{item.pk}/accept/").status_code == 405


@pytest.mark.parametrize("reason", ["", "   ", "a\x00b", "bad\x1bline", "x" * 1001],
                         ids=["empty", "blank", "nul", "control", "too long"])
def test_a_dismissal_without_a_good_reason_changes_nothing(world, item, client_for, reason):
    client = client_for(world["data"])
    response = client.post(f"/staff/registry/{item.pk}/dismiss/", {"reason": reason}, follow=True)
    assert response.status_code == 200 and "alert-danger" in response.content.decode()
    assert RegistryCorrection.objects.get(pk=item.pk).state == "pending"


def test_a_dismissal_through_the_page_is_recorded(world, item, client_for):
    response = client_for(world["data"]).post(f"/staff/registry/{item.pk}/dismiss/", {"reason": "Проверено"})
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.state, item.decided_by, item.note) == ("dismissed", world["data"], "Проверено")
