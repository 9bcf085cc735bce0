"""Routing decides, complaints write: routing.services.reroute_plan only plans (a temporary table of the
transaction), complaints.services.complaints_reroute applies it; and the full re-decision split over several
connections comes to the same plan as one connection, applied once per moved complaint."""
import pytest
from django.contrib.gis.geos import Point
from django.db import connection, transaction

import routing.services
from complaints.models import OPEN_STATES, Complaint, ComplaintEvent
from complaints.services import complaints_reroute
from facilities.models import AdminArea, Department, Facility
from routing.services import reroute_plan
from tests.routing.conftest import RED_SQUARE, category, make_complaint

# Points in district Тверской (around Red Square) and elsewhere in the city.
TVERSKOY = [(RED_SQUARE[0] + dx, RED_SQUARE[1] + dy) for dx in (-0.004, 0.0, 0.003) for dy in (-0.002, 0.002)]
ELSEWHERE = [(37.50, 55.80), (37.70, 55.65), (37.45, 55.70)]


def night_shift_for_tverskoy_potholes():
    """A new department of Тверской's council takes its yard potholes: written with SQL, so that no admin signal
    re-routes at once (the tests call the re-route themselves)."""
    council = AdminArea.objects.get(level="district", name="Тверской").authority
    with connection.cursor() as cur:
        cur.execute("INSERT INTO facilities_department (authority_id, code, name, is_triage) "
                    "VALUES (%s, 't-night', 'Ночная смена', false) RETURNING id", [council.pk])
        night = cur.fetchone()[0]
        cur.execute("INSERT INTO routing_routingassignment (authority_id, category_id, department_id, source_key) "
                    "VALUES (%s, %s, %s, 't') ON CONFLICT ON CONSTRAINT assignment_unique "
                    "DO UPDATE SET department_id = EXCLUDED.department_id",
                    [council.pk, category("yard-pothole").pk, night])
    return Department.objects.get(pk=night)


@pytest.mark.django_db
def test_the_plan_writes_nothing_and_complaints_apply_it():
    moving = [make_complaint(p, "yard-pothole") for p in TVERSKOY]
    staying = [make_complaint(p, "yard-pothole") for p in ELSEWHERE] + [make_complaint(RED_SQUARE, "yard-snow")]
    night = night_shift_for_tverskoy_potholes()
    before = {c.pk: (c.department_id, c.decision_id, c.updated_at) for c in Complaint.objects.all()}
    events = ComplaintEvent.objects.count()
    with transaction.atomic():
        plan = reroute_plan(open_states=OPEN_STATES)
        assert (plan.moves, plan.refreshes) == (len(moving), 0)
        with connection.cursor() as cur:
            cur.execute(f"SELECT key, department_id FROM {plan.table} WHERE moves ORDER BY key")
            assert cur.fetchall() == [(c.pk, night.pk) for c in moving]
        # planning changed no complaint and wrote no history
        assert {c.pk: (c.department_id, c.decision_id, c.updated_at) for c in Complaint.objects.all()} == before
        assert ComplaintEvent.objects.count() == events
        routing.services.reroute_plan_drop()
    # a state that is not open is not planned: the caller says which are
    with transaction.atomic():
        assert reroute_plan(open_states=["in_progress"]).moves == 0
        routing.services.reroute_plan_drop()
    result = complaints_reroute(reason="test")
    assert result.moved == len(moving)
    for c in Complaint.objects.filter(pk__in=[c.pk for c in moving]):
        assert c.department_id == night.pk
        assert ComplaintEvent.objects.filter(complaint=c, kind="routed", actor_label="system:reroute").count() == 1
    for c in Complaint.objects.filter(pk__in=[c.pk for c in staying]):
        assert (c.department_id, c.decision_id) == before[c.pk][:2]


@pytest.mark.django_db(transaction=True)
def test_the_full_re_decision_over_several_connections_agrees_with_one(demo_city, monkeypatch):
    # Committed data (a transactional test): the other connections share the caller's snapshot, so they see it.
    # Most complaints move, so that each range's edges fall on complaints that move.
    moving = [make_complaint(p, "yard-pothole") for p in TVERSKOY]
    others = [make_complaint(p, c) for p, c in zip(ELSEWHERE, ("yard-pothole", "school-territory", "yard-snow"))]
    night = night_shift_for_tverskoy_potholes()
    with pytest.raises(RuntimeError, match="transaction"):  # the plan lives in a transaction: outside, refused
        reroute_plan(open_states=OPEN_STATES)

    monkeypatch.setattr(routing.services, "PARALLEL_MIN", 10 ** 9)
    one = complaints_reroute(dry_run=True)
    monkeypatch.setattr(routing.services, "PARALLEL_MIN", 1)
    split = complaints_reroute(dry_run=True)
    assert (one.connections, split.connections) == (1, routing.services.PARALLEL_RANGES)
    assert split.considered == one.considered == len(moving) + len(others)
    assert [(m.complaint_id, m.to_department, m.explanation_ru) for m in split.moves] == \
        [(m.complaint_id, m.to_department, m.explanation_ru) for m in one.moves]
    assert {m.complaint_id for m in split.moves} == {c.pk for c in moving}

    applied = complaints_reroute(reason="test")  # split over connections, applied on the caller's
    assert (applied.connections, applied.moved, applied.refreshed) == (routing.services.PARALLEL_RANGES,
                                                                       len(moving), 0)
    for c in Complaint.objects.filter(pk__in=[c.pk for c in moving]).select_related("decision"):
        assert c.department_id == night.pk and c.decision.department_id == night.pk
        assert ComplaintEvent.objects.filter(complaint=c, kind="routed", actor_label="system:reroute").count() == 1
    assert complaints_reroute().moved == 0  # done once: nothing left to move
    assert not ComplaintEvent.objects.filter(complaint__in=others, kind="routed").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["routing table (no spatial search)", "category (targeted: its complaints search again)",
                                    "facilities (targeted: the complaints around them search again)"])
def test_a_pass_without_a_full_search_over_several_connections_agrees_with_one(demo_city, monkeypatch, change):
    # The complaints to decide again go as a list of ids, split over connections that share the caller's snapshot.
    moving = [make_complaint(p, "yard-pothole") for p in TVERSKOY]
    others = [make_complaint(p, c) for p, c in zip(ELSEWHERE, ("yard-pothole", "school-territory", "yard-snow"))]
    night = night_shift_for_tverskoy_potholes()
    kwargs = {"spatial": False}
    if change.startswith("category"):
        potholes = category("yard-pothole")
        kwargs = {"categories": [potholes.pk]}
    elif change.startswith("facilities"):
        near = Facility.objects.filter(valid_to=None, geom__dwithin=(Point(*RED_SQUARE, srid=4326), 0.01))
        kwargs = {"facilities": list(near.values_list("pk", flat=True))}
        assert kwargs["facilities"]

    def runs(**more):
        # one: everything on the caller's connection; split: a targeted pass's search on a second connection
        # beside the may-move pass, and the decisions over several
        monkeypatch.setattr(routing.services, "PARALLEL_MIN_LISTED", 10 ** 9)
        monkeypatch.setattr(routing.services, "SEARCH_BESIDE_MIN", 10 ** 9)
        one = complaints_reroute(dry_run=True, **kwargs, **more)
        monkeypatch.setattr(routing.services, "PARALLEL_MIN_LISTED", 1)
        monkeypatch.setattr(routing.services, "SEARCH_BESIDE_MIN", 0)
        split = complaints_reroute(dry_run=True, **kwargs, **more)
        return one, split

    one, split = runs()
    assert (one.connections, split.connections) == (1, routing.services.PARALLEL_RANGES)
    # the search ran beside the may-move pass only in the split run (only a targeted pass searches)
    assert ("search_wait" in split.stages, "search_wait" in one.stages) == ("spatial" not in kwargs, False)
    assert split.considered == one.considered == len(moving) + len(others)
    assert split.decided == one.decided >= len(moving)
    if "facilities" in kwargs:
        assert split.searched == one.searched
    if "categories" in kwargs:
        assert split.searched == one.searched >= len(moving) + 1  # the yard potholes (and their group) search again
    assert [(m.complaint_id, m.to_department, m.explanation_ru) for m in split.moves] == \
        [(m.complaint_id, m.to_department, m.explanation_ru) for m in one.moves]
    assert {m.complaint_id for m in split.moves} == {c.pk for c in moving}
    assert split.refreshed == one.refreshed
    # limited to some complaints: the same limit on every connection
    one, split = runs(complaint_ids=[moving[0].pk, others[0].pk])
    assert [m.complaint_id for m in split.moves] == [m.complaint_id for m in one.moves] == [moving[0].pk]

    applied = complaints_reroute(reason="test", **kwargs)  # split over connections, applied on the caller's
    assert (applied.connections, applied.moved) == (routing.services.PARALLEL_RANGES, len(moving))
    assert set(Complaint.objects.filter(pk__in=[c.pk for c in moving]).values_list("department_id", flat=True)) \
        == {night.pk}
    assert complaints_reroute(**kwargs).moved == 0
