"""Re-routing: when ownership, jurisdiction or the routing table change, exactly the open complaints whose answer
changed move, each with a new decision and a history entry; closed ones keep theirs."""
import json
from pathlib import Path

import pytest
import shapely
from django.conf import settings
from django.core.management import call_command

from complaints.models import Complaint, ComplaintEvent
from complaints.tasks import reroute_run
from facilities.models import AdminArea, Authority, Department, Facility
from importers.core import run_import
from routing.models import RoutingAssignment, RoutingDecision
from complaints.services import complaints_reroute
from tests.routing.conftest import RED_SQUARE, category, make_complaint

pytestmark = pytest.mark.django_db

DATA = Path(settings.BASE_DIR) / "data"
BUILDINGS_SPEC = DATA / "specs" / "moscow_education_buildings.yaml"
EDU_FILE = DATA / "moscow" / "moscow_education_orgs.geojson"


def inside(facility):
    p = shapely.from_wkb(bytes(facility.geom.wkb)).point_on_surface()
    return (p.x, p.y)


def two_schools():
    """Two schools far apart, each the only school covering its own point."""
    schools = list(Facility.objects.active().filter(type__code="school").select_related("owner").order_by("source_key"))
    return schools[10], schools[200]


def test_changing_a_schools_owner_by_reimport_moves_exactly_its_open_complaints(tmp_path):
    school, other = two_schools()
    assert school.owner_id != other.owner_id
    point = inside(school)
    moving = [make_complaint(point, "school-territory", state=s) for s in ("assigned", "in_progress", "reopened")]
    closed = [make_complaint(point, "school-building", state=s) for s in ("resolved", "duplicate")]
    elsewhere = [make_complaint(inside(other), "school-territory"), make_complaint(RED_SQUARE, "yard-pothole"),
                 make_complaint(point, "yard-pothole")]  # same place, a district category: stays with the council
    assert {c.department.authority_id for c in moving} == {school.owner_id}
    before = {c.pk: (c.department_id, c.decision_id) for c in Complaint.objects.all()}

    # The education buildings file, with this school's INN pointing at the other organisation.
    doc = json.loads(EDU_FILE.read_text(encoding="utf-8"))
    changed = [f for f in doc["features"] if str(f["properties"]["global_id"]) == school.source_key]
    assert len(changed) == 1
    changed[0]["properties"]["INN"] = other.owner.inn
    path = tmp_path / "moscow_education_orgs.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")

    result = run_import(path, BUILDINGS_SPEC, commit=True)
    assert result.counts["updated"] == 1
    assert result.counts["rerouted"] == len(moving)
    assert "re-routed" in result.report_text

    after = {c.pk: c for c in Complaint.objects.select_related("decision", "department")}
    moved = {pk for pk, c in after.items() if (c.department_id, c.decision_id) != before[pk]}
    assert moved == {c.pk for c in moving}
    assert not moved & {c.pk for c in closed + elsewhere}
    for c in moving:
        now = after[c.pk]
        assert now.department.authority_id == other.owner_id
        assert now.decision.authority_id == other.owner_id and now.decision.facility_id == school.pk
        assert now.state == c.state  # re-routing moves a complaint, it does not change its state
        assert now.decision.explanation_ru == (f"Школа {other.owner.short_name} отвечает за это здание: "
                                               "точка внутри его контура")
        event = ComplaintEvent.objects.get(complaint=c, kind="routed", actor_label="system:reroute")
        assert event.from_department_id == c.department_id and event.to_department_id == now.department_id
        assert event.decision_id == now.decision_id
        assert event.reason.startswith(f"import run #{result.run.pk}") and other.owner.short_name in event.reason
    for c in closed:
        assert after[c.pk].decision_id == c.decision_id and after[c.pk].department_id == c.department_id
        assert not ComplaintEvent.objects.filter(complaint=c, kind="routed").exists()

    # Importing the original file again moves them back; a second run of the re-route finds nothing to do.
    result = run_import(EDU_FILE, BUILDINGS_SPEC, commit=True)
    assert result.counts["rerouted"] == len(moving)
    assert {Complaint.objects.get(pk=c.pk).department_id for c in moving} == {moving[0].department_id}
    assert complaints_reroute().moved == 0


def test_dry_run_lists_the_moves_and_changes_nothing(capsys):
    school, other = two_schools()
    complaints = [make_complaint(inside(school), "school-territory") for _ in range(3)]
    Facility.objects.filter(pk=school.pk).update(owner=other.owner)  # behind the engine's back
    decisions = RoutingDecision.objects.count()
    result = complaints_reroute(dry_run=True)
    assert result.dry_run and result.moved == 3 and result.considered >= 3
    assert {m.complaint_id for m in result.moves} == {c.pk for c in complaints}
    assert all(m.to_department.endswith(f"({other.owner.short_name})") or other.owner.short_name in m.to_department
               for m in result.moves)
    assert RoutingDecision.objects.count() == decisions
    assert {Complaint.objects.get(pk=c.pk).department_id for c in complaints} == {complaints[0].department_id}

    call_command("reroute", "--dry-run")
    out = capsys.readouterr().out
    assert "3 would move" in out and complaints[0].tracking_code in out and "Dry run" in out
    call_command("reroute")
    assert "3 moved" in capsys.readouterr().out
    assert {Complaint.objects.get(pk=c.pk).department.authority_id for c in complaints} == {other.owner_id}


def test_reroute_dry_run_of_an_import_shows_what_it_would_move(tmp_path, capsys):
    school, other = two_schools()
    complaint = make_complaint(inside(school), "school-territory")
    doc = json.loads(EDU_FILE.read_text(encoding="utf-8"))
    for f in doc["features"]:
        if str(f["properties"]["global_id"]) == school.source_key:
            f["properties"]["INN"] = other.owner.inn
    path = tmp_path / "edu.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    call_command("reroute_preview", str(path), "--spec", str(BUILDINGS_SPEC))
    out = capsys.readouterr().out
    assert "1 would move" in out and complaint.tracking_code in out
    assert Facility.objects.get(pk=school.pk).owner_id == school.owner_id  # nothing of the import was kept
    assert Complaint.objects.get(pk=complaint.pk).department_id == complaint.department_id


def test_changing_an_areas_authority_in_the_admin_moves_its_complaints(django_capture_on_commit_callbacks):
    yard = make_complaint(RED_SQUARE, "yard-pothole")
    manual = make_complaint(RED_SQUARE, "yard-rubbish")
    # a person sent this one somewhere by hand: re-routing leaves it there
    manual_decision = RoutingDecision.objects.create(
        department=yard.department, authority=yard.department.authority, rule="manual", engine_version="manual",
        explanation_ru="вручную", explanation_en="by hand")
    Complaint.objects.filter(pk=manual.pk).update(decision=manual_decision)

    tverskoy = AdminArea.objects.get(level="district", name="Тверской")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        acting = Authority.objects.create(code="acting-council", name="Временная управа",
                                          short_name="Временная управа", kind="district_council")
        Department.objects.create(authority=acting, code="main", name="Временная управа")
        tverskoy.authority = acting
        tverskoy.save()
    reroute_run()  # the worker's task, here (tests/queue/test_reroute_queue.py: on a worker)
    assert len(callbacks) == 1  # one re-route per transaction, however many rows were saved
    yard.refresh_from_db()
    assert yard.department.authority == acting and yard.decision.rule == "area"
    assert "Временная управа отвечает за территорию: район Тверской" == yard.decision.explanation_ru
    manual.refresh_from_db()
    assert manual.decision_id == manual_decision.pk


def test_changing_the_routing_table_in_the_admin_moves_complaints(django_capture_on_commit_callbacks):
    trade = make_complaint(RED_SQUARE, "illegal-trade")
    prefecture = AdminArea.objects.get(level="okrug", name="Центральный").authority
    with django_capture_on_commit_callbacks(execute=True):
        desk = Department.objects.create(authority=prefecture, code="kiosks", name="Отдел по НТО")
        RoutingAssignment.objects.filter(authority=prefecture, category=category("illegal-trade")).update(
            department=desk)  # .update() sends no signal; the save below does
        RoutingAssignment.objects.get(authority=prefecture, category=category("illegal-trade")).save()
    reroute_run()  # the worker's task, here (tests/queue/test_reroute_queue.py: on a worker)
    trade.refresh_from_db()
    assert trade.department == desk


def test_the_reroute_is_set_based(django_assert_max_num_queries):
    school, other = two_schools()
    for _ in range(40):
        make_complaint(inside(school), "school-territory")
    Facility.objects.filter(pk=school.pk).update(owner=other.owner)
    with django_assert_max_num_queries(15):  # the same handful of statements for 40 complaints or 100,000
        assert complaints_reroute(dry_run=True, spatial=False).moved == 40
    with django_assert_max_num_queries(15):
        assert complaints_reroute().moved == 40


def test_a_reroute_without_spatial_search_agrees_with_a_full_one():
    school, other = two_schools()
    hospital = Facility.objects.filter(type__code="hospital").order_by("source_key").first()
    h = shapely.get_parts(shapely.from_wkb(bytes(hospital.geom.wkb)))[0]
    complaints = [make_complaint(inside(school), code) for code in ("school-territory", "school-building")]
    complaints += [make_complaint((h.x, h.y + 0.001), "hospital-access"), make_complaint(RED_SQUARE, "yard-pothole"),
                   make_complaint(RED_SQUARE, "illegal-trade"), make_complaint(inside(other), "kindergarten-territory"),
                   make_complaint(inside(school), "school-territory", facility=school)]  # picked (it covers the point)
    # Owners, jurisdiction and the routing table change behind the engine's back (no geometry moves).
    Facility.objects.filter(pk__in=[school.pk, hospital.pk]).update(owner=other.owner)
    acting = Authority.objects.create(code="acting", name="Временная управа", short_name="Временная управа")
    Department.objects.create(authority=acting, code="main", name="Временная управа")
    AdminArea.objects.filter(level="district", name="Тверской").update(authority=acting)
    prefecture = AdminArea.objects.get(level="okrug", name="Центральный").authority
    RoutingAssignment.objects.filter(authority=prefecture, category=category("illegal-trade")).delete()

    full = complaints_reroute(dry_run=True)
    quick = complaints_reroute(dry_run=True, spatial=False)
    assert full.moved == 6  # all but the kindergarten complaint
    assert [(m.complaint_id, m.to_department, m.explanation_ru) for m in quick.moves] == \
        [(m.complaint_id, m.to_department, m.explanation_ru) for m in full.moves]


def test_a_routing_table_import_moves_complaints_without_a_spatial_search(tmp_path):
    yard = make_complaint(RED_SQUARE, "yard-pothole")
    path = tmp_path / "table.csv"
    path.write_text((DATA / "moscow" / "catalogue_routing.csv").read_text(encoding="utf-8")
                    .replace("councils-yards,kind,district_council,group,Дворы,zhkh,Отдел ЖКХ и благоустройства",
                             "councils-yards,kind,district_council,group,Дворы,yards,Отдел дворовых территорий"),
                    encoding="utf-8")
    result = run_import(path, DATA / "specs" / "moscow_categories_routing.yaml", commit=True)
    assert result.counts["rerouted"] >= 1
    yard.refresh_from_db()
    assert yard.department.code == "yards" and yard.department.authority == yard.area.authority
    assert yard.decision.explanation_ru == "Управа района Тверской отвечает за территорию: район Тверской"
    assert complaints_reroute(dry_run=True).moved == 0  # a full re-decision agrees
