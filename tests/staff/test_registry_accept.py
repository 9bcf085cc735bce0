"""Accepting a registry correction of each kind (staff.corrections), in-process (the worker's step,
correction_apply, called directly; tests/queue/test_registry_corrections.py runs it on a real worker): three
complaints handed on to the same other authority put a facility, an area or a category rule in the queue; accepting
it imports the correction through the importers' core as a partial update of the subject's dataset (an ImportRun,
the dataset's next Generation) that moves the facility's owner, the area's jurisdiction or the category's department,
and re-routes their open complaints. A bad or stale accept (the subject or the authority gone, the registry already
saying so, decided already, gone by the time the worker runs) changes nothing, and only data staff decide."""
import pytest
from django.utils import timezone

from complaints.models import Complaint
from facilities.models import AdminArea, Authority, Department, Facility, Generation
from importers.models import ImportRun
from routing.models import Category
from staff.corrections import CorrectionError, correction_accept, correction_apply, corrections_find
from staff.models import RegistryCorrection
from tests.complaints.factories import make_user

from .corrections_helpers import file_at, hand_on, people, school_and_neighbour

pytestmark = pytest.mark.django_db

TVERSKOY_POINT = (37.6056, 55.7655)
KINDS = ["facility", "area", "category"]


@pytest.fixture
def world(db):
    facility, neighbour = school_and_neighbour()
    tverskoy = AdminArea.objects.select_related("authority", "parent__authority").get(level="district",
                                                                                      name="Тверской")
    return {"facility": facility, "neighbour": neighbour, "tverskoy": tverskoy,
            "prefecture": Department.objects.filter(authority=tverskoy.parent.authority).order_by("pk").first(),
            "council": tverskoy.authority.departments.order_by("pk").first(), **people(facility, "t-ra")}


def make_case(world, kind):
    """Three complaints of `kind`'s subject handed on to one other department, and one more not handed on (open,
    with the registry's answer until the correction). Returns (the pending correction, that open complaint, the
    department the hand-ons went to)."""
    if kind == "facility":
        where, code, text, = world["facility"].inside, "school-territory", "У входа в школу не убран снег"
        by, to = world["owner"], world["neighbour"]
    elif kind == "area":
        where, code, text = TVERSKOY_POINT, "waste-dump", "Стихийная свалка строительного мусора"
        by, to = make_user("t-ra-council", departments=list(world["tverskoy"].authority.departments.all())), \
            world["prefecture"]
    else:
        where, code, text = TVERSKOY_POINT, "road-pothole", "Яма на проезжей части"
        by, to = make_user("t-ra-road", superuser=True), world["council"]
    for _ in range(3):
        c = file_at(where, code=code, text=text)
        assert c.decision.rule == {"facility": c.decision.rule, "area": "area", "category": "department"}[kind]
        hand_on(c, by, to, reason="Не наше")
    still_open = file_at(where, code=code, text=text)
    assert still_open.department.authority_id != to.authority_id
    corrections_find()
    item = RegistryCorrection.objects.get(kind=kind, state="pending")
    assert item.authority_id == to.authority_id and item.complaints == 3
    return item, still_open, to


def registry_says(world, kind):
    """Who the registry names for the subject now: the facility's owner, the area's authority, the category's
    department's authority."""
    if kind == "facility":
        return Facility.objects.get(pk=world["facility"].pk).owner_id
    if kind == "area":
        return AdminArea.objects.get(pk=world["tverskoy"].pk).authority_id
    return Category.objects.select_related("department").get(code="road-pothole").department.authority_id


@pytest.mark.parametrize("kind", KINDS)
def test_accepting_imports_the_correction_and_moves_the_open_complaints(world, kind):
    item, still_open, to = make_case(world, kind)
    generations = Generation.objects.filter(dataset__code=item.dataset_code).count()
    correction_accept(correction=item, user=world["data"])
    outcome = correction_apply(item.pk)
    item.refresh_from_db()
    assert (outcome, item.state) == ("accepted", "accepted"), item.note
    assert registry_says(world, kind) == to.authority_id
    run = ImportRun.objects.get(pk=item.import_run_id)  # listed among the import runs, by who accepted it
    assert (run.dataset_code, run.user_id, run.commit, run.spec["mode"]) == (
        item.dataset_code, world["data"].pk, True, "partial")
    assert run.counts["updated"] == 1 and run.counts.get("rejected", 0) == 0
    if kind == "facility":  # facilities are stored by generation: the dataset's next one
        assert Generation.objects.filter(dataset__code=item.dataset_code).count() == generations + 1
    assert item.rerouted >= 1
    assert Complaint.objects.get(pk=still_open.pk).department.authority_id == to.authority_id
    if kind == "category":
        assert Category.objects.get(code="road-pothole").department_id == to.pk
    assert correction_apply(item.pk) == "not due"  # a retried task changes nothing


def _subject_gone(world, kind):
    now = timezone.now()
    if kind == "facility":
        Facility.objects.filter(pk=world["facility"].pk).update(valid_to=now)
    elif kind == "area":
        AdminArea.objects.filter(pk=world["tverskoy"].pk).update(valid_to=now)
    else:
        Category.objects.filter(code="road-pothole").update(active=False)


def _authority_gone(world, kind, item):
    Authority.objects.filter(pk=item.authority_id).update(valid_to=timezone.now())


def _registry_says_so(world, kind, item):
    if kind == "facility":
        Facility.objects.filter(pk=world["facility"].pk).update(owner_id=item.authority_id)
    elif kind == "area":
        AdminArea.objects.filter(pk=world["tverskoy"].pk).update(authority_id=item.authority_id)
    else:
        Category.objects.filter(code="road-pothole").update(department=world["council"])


def _not_a_department_rule(world, kind, item):
    if kind == "category":
        Category.objects.filter(code="road-pothole").update(rule="area", area_level_id="district")
    else:
        _subject_gone(world, kind)


STALE = {"subject gone": lambda w, k, i: _subject_gone(w, k), "authority gone": _authority_gone,
         "registry says so already": _registry_says_so, "rule changed or gone": _not_a_department_rule}


def snapshot(world, kind):
    return (registry_says(world, kind), ImportRun.objects.count(), Generation.objects.count(),
            sorted(Complaint.objects.values_list("id", "department_id")))


@pytest.mark.parametrize("stale", list(STALE))
@pytest.mark.parametrize("kind", KINDS)
def test_a_stale_accept_changes_nothing(world, kind, stale):
    item, _, _ = make_case(world, kind)
    STALE[stale](world, kind, item)
    before = snapshot(world, kind)
    with pytest.raises(CorrectionError):
        correction_accept(correction=item, user=world["data"])
    assert RegistryCorrection.objects.get(pk=item.pk).state == "pending"
    assert snapshot(world, kind) == before


@pytest.mark.parametrize("kind", KINDS)
def test_a_subject_gone_before_the_worker_runs_fails_the_correction_and_changes_nothing(world, kind):
    item, _, _ = make_case(world, kind)
    correction_accept(correction=item, user=world["data"])
    _subject_gone(world, kind)
    before = snapshot(world, kind)
    assert correction_apply(item.pk) == "failed"
    item.refresh_from_db()
    assert item.state == "failed" and item.note
    assert snapshot(world, kind) == before


@pytest.mark.parametrize("kind", KINDS)
def test_accepting_twice_is_refused(world, kind):
    item, _, _ = make_case(world, kind)
    correction_accept(correction=item, user=world["data"])
    with pytest.raises(CorrectionError):
        correction_accept(correction=item, user=world["data"])
    assert RegistryCorrection.objects.get(pk=item.pk).state == "queued"


@pytest.mark.parametrize("who", ["owner", "other", "dispatcher", "superuser-less staff of the new authority"])
@pytest.mark.parametrize("kind", KINDS)
def test_only_data_staff_accept(world, kind, who, client_for):
    item, _, to = make_case(world, kind)
    user = {"dispatcher": lambda: make_user("t-ra-disp", groups=["City dispatchers"]),
            "superuser-less staff of the new authority": lambda: make_user("t-ra-new", departments=[to])}.get(
        who, lambda: world[who])()
    before = snapshot(world, kind)
    with pytest.raises(CorrectionError):
        correction_accept(correction=item, user=user)
    assert client_for(user).post(f"/staff/registry/{item.pk}/accept/").status_code == 403
    assert RegistryCorrection.objects.get(pk=item.pk).state == "pending"
    assert snapshot(world, kind) == before


@pytest.mark.parametrize("kind", KINDS)
def test_data_staff_accept_on_the_page(world, kind, client_for):
    item, _, _ = make_case(world, kind)
    client = client_for(world["data"])
    page = client.get(f"/staff/registry/{item.pk}/").content.decode()
    assert 'id="accept"' in page
    response = client.post(f"/staff/registry/{item.pk}/accept/")
    assert response.status_code == 302
    assert RegistryCorrection.objects.get(pk=item.pk).state == "queued"
