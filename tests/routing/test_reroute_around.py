"""Re-routing after a change to some facilities, areas or categories searches again only around them, and must
come to exactly what deciding every open complaint again would: checked by a full re-decision afterwards finding
nothing to move and nothing to refresh."""
import csv

import numpy as np
import pytest
import yaml

from complaints.models import Complaint, ComplaintEvent
from complaints.tasks import reroute_run
from facilities.models import Facility
from importers.core import run_import
from complaints.services import complaints_reroute
from tests.routing.conftest import RED_SQUARE, make_complaint
from tests.routing.test_reroute import two_schools

pytestmark = pytest.mark.django_db

# A 6 x 6 grid of streetlights about 22 m apart near Red Square (category streetlight-out: radius 30 m).
LON0, LAT0, STEP = RED_SQUARE[0] - 0.001, RED_SQUARE[1] - 0.0006, 0.0002


def lights():
    return {f"L{i}-{j}": (LON0 + i * STEP * 1.8, LAT0 + j * STEP) for i in range(6) for j in range(6)}


def write(tmp_path, rows, name):
    path = tmp_path / f"{name}.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["key", "type", "owner", "name", "lon", "lat"])
        for key, (typ, owner, (lon, lat)) in sorted(rows.items()):
            w.writerow([key, typ, owner, f"Фонарь {key}", f"{lon:.7f}", f"{lat:.7f}"])
    return path


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "lights.yaml"
    path.write_text(yaml.safe_dump({
        "dataset": "test-lights", "target": "facilities", "key": "key", "source": {"lon": "lon", "lat": "lat"},
        "type": {"field": "type"}, "owner": {"match": "code", "field": "owner"}, "name": "name"},
        allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def owners():
    a, b = two_schools()  # two organisations that have departments
    return a.owner.code, b.owner.code


def complaints_in_grid(n, seed=5):
    rng = np.random.default_rng(seed)
    made = []
    for _ in range(n):
        lon = LON0 + rng.uniform(-0.0003, 6 * STEP * 1.8 + 0.0003)
        lat = LAT0 + rng.uniform(-0.0003, 6 * STEP + 0.0003)
        made.append(make_complaint((round(lon, 7), round(lat, 7)), "streetlight-out"))
    return made


def assert_a_full_redecision_agrees():
    full = complaints_reroute(dry_run=True)
    assert (full.moved, full.refreshed) == (0, 0), [(m.complaint_id, m.explanation_en) for m in full.moves]


def test_a_facilities_import_reroutes_around_what_it_changed_and_agrees_with_a_full_pass(tmp_path, spec, owners):
    a, b = owners
    grid = lights()
    rows = {key: ("streetlight", a if n % 2 else b, p) for n, (key, p) in enumerate(sorted(grid.items()))}
    first = run_import(write(tmp_path, rows, "v1"), spec, commit=True)
    assert first.counts["created"] == 36
    complaints = complaints_in_grid(60)
    far = [make_complaint(RED_SQUARE, "yard-pothole"), make_complaint((37.70, 55.80), "streetlight-out")]
    assert_a_full_redecision_agrees()

    # The next file: 3 lights moved by ~20 m, 2 gone, 2 new, 4 change hands, 1 is now a bus stop.
    keys = sorted(grid)
    for key in keys[0:3]:
        typ, owner, (lon, lat) = rows[key]
        rows[key] = (typ, owner, (lon + 0.0003, lat + 0.0001))
    for key in keys[3:5]:
        del rows[key]
    rows["N1"] = ("streetlight", a, (LON0 + 2.5 * STEP * 1.8, LAT0 + 2.5 * STEP))
    rows["N2"] = ("streetlight", b, (LON0 - 0.0001, LAT0 + 5 * STEP))
    for key in keys[10:14]:
        typ, owner, p = rows[key]
        rows[key] = (typ, b if owner == a else a, p)
    rows[keys[20]] = ("bus_stop",) + rows[keys[20]][1:]
    before = {c.pk: c.department_id for c in Complaint.objects.all()}
    second = run_import(write(tmp_path, rows, "v2"), spec, commit=True)
    assert (second.counts["created"], second.counts["retired"]) == (2, 2)

    r = second.reroute
    assert r is not None and r.searched is not None
    assert 0 < r.searched < r.considered  # only complaints near what moved searched again
    assert r.moved > 0 and r.moved == second.counts["rerouted"]
    after = {c.pk: c.department_id for c in Complaint.objects.all()}
    assert sum(after[pk] != dep for pk, dep in before.items()) == r.moved
    assert all(after[c.pk] == c.department_id for c in far)
    assert_a_full_redecision_agrees()

    # Every move has a public history line; a refresh (same department, other facility) a staff-only one.
    routed = ComplaintEvent.objects.filter(kind="routed", actor_label="system:reroute",
                                           complaint__in=[c.pk for c in complaints])
    assert routed.filter(public=True).count() == r.moved
    assert routed.filter(public=False).count() == r.refreshed
    for event in routed.filter(public=False):
        assert event.from_department_id == event.to_department_id and "decision refreshed" in event.reason


def test_searching_around_moved_facilities_gives_the_same_moves_as_a_full_pass_after_edits_behind_the_engines_back(tmp_path, spec, owners):
    a, b = owners
    grid = lights()
    rows = {key: ("streetlight", a if n % 3 else b, p) for n, (key, p) in enumerate(sorted(grid.items()))}
    run_import(write(tmp_path, rows, "v1"), spec, commit=True)
    complaints_in_grid(50, seed=9)
    lights_by_key = {f.source_key: f for f in Facility.objects.filter(dataset__code="test-lights")}
    moved_ids, owner_of = [], {a: b, b: a}
    for n, key in enumerate(sorted(lights_by_key)[::5]):  # every fifth light jumps 15-40 m; some change hands
        f = lights_by_key[key]
        f.geom.x += 0.0002 + 0.0001 * (n % 3)
        owner = f.owner if n % 2 else Facility._meta.get_field("owner").related_model.objects.get(
            code=owner_of[f.owner.code])
        Facility.objects.filter(pk=f.pk).update(geom=f.geom, owner=owner)
        moved_ids.append(f.pk)
    full = complaints_reroute(dry_run=True)
    targeted = complaints_reroute(dry_run=True, facilities=moved_ids)
    assert full.moved > 0
    assert targeted.searched < targeted.considered
    assert [(m.complaint_id, m.to_department, m.explanation_ru) for m in targeted.moves] == \
        [(m.complaint_id, m.to_department, m.explanation_ru) for m in full.moves]
    assert targeted.refreshed == full.refreshed > 0
    # Without the ids of what moved, the quick path sees only the owners: it would miss moves.
    blind = complaints_reroute(dry_run=True, facilities=[])
    assert blind.searched == 0 and blind.moved < full.moved


def test_moving_a_facility_in_the_admin_reroutes_around_it(tmp_path, spec, owners, django_capture_on_commit_callbacks):
    a, b = owners
    rows = {"L1": ("streetlight", a, RED_SQUARE), "L2": ("streetlight", b, (RED_SQUARE[0] + 0.003, RED_SQUARE[1]))}
    run_import(write(tmp_path, rows, "v1"), spec, commit=True)
    near_l2 = make_complaint((RED_SQUARE[0] + 0.0031, RED_SQUARE[1]), "streetlight-out")
    l1 = Facility.objects.get(dataset__code="test-lights", source_key="L1")
    assert near_l2.decision.facility.source_key == "L2"
    with django_capture_on_commit_callbacks(execute=True):
        l2 = Facility.objects.get(dataset__code="test-lights", source_key="L2")
        l2.geom = l1.geom
        l2.save()  # L2 now stands beside L1: nothing of its type is within 30 m of the complaint
    reroute_run()  # the worker's task, here (tests/queue/test_reroute_queue.py: on a worker)
    near_l2.refresh_from_db()
    assert near_l2.decision.rule == "department" and near_l2.decision.facility_id is None
    assert_a_full_redecision_agrees()


def test_an_areas_import_reroutes_around_the_areas_it_changed(tmp_path):
    """Тверской loses a 150 m strip along its edge: the complaints there move (no district covers them now), and a
    full re-decision afterwards finds nothing more to do."""
    import json

    import shapely
    from django.conf import settings

    from facilities.models import AdminArea

    source = settings.BASE_DIR / "data" / "moscow" / "mo.geojson"
    spec = settings.BASE_DIR / "data" / "specs" / "moscow_districts.yaml"
    doc = json.loads(source.read_text(encoding="utf-8"))
    [feature] = [f for f in doc["features"] if f["properties"]["NAME"] == "Тверской"]
    shape = shapely.geometry.shape(feature["geometry"])
    rng = np.random.default_rng(11)
    minx, miny, maxx, maxy = shape.bounds
    near_edge = []
    while len(near_edge) < 25:
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        p = shapely.Point(x, y)
        if shape.contains(p) and shape.boundary.distance(p) < 0.0012:
            near_edge.append(make_complaint((round(x, 6), round(y, 6)), "yard-pothole"))
    inner = make_complaint(RED_SQUARE, "yard-pothole")
    elsewhere = [make_complaint((37.70, 55.80), "yard-pothole"), make_complaint((37.50, 55.70), "road-pothole")]
    assert {c.area.name for c in near_edge + [inner]} == {"Тверской"}

    feature["geometry"] = shapely.geometry.mapping(shapely.MultiPolygon(
        [g for g in shapely.get_parts(shape.buffer(-0.0015))]))
    changed = tmp_path / "mo.geojson"
    changed.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    result = run_import(changed, spec, commit=True)
    assert result.counts["updated"] == 1
    r = result.reroute
    assert r.searched is not None and 0 < r.searched < r.considered
    assert r.moved >= 1
    for c in near_edge:
        c.refresh_from_db()
    assert any(c.area.level_id == "okrug" for c in near_edge)  # the strip: only the okrug covers it now
    inner.refresh_from_db()
    assert inner.area == AdminArea.objects.get(level="district", name="Тверской", valid_to=None)
    assert all(Complaint.objects.get(pk=c.pk).decision_id == c.decision_id for c in elsewhere)
    assert_a_full_redecision_agrees()

    # Back as it was: the strip's complaints name the okrug now, not Тверской; its outline finds them.
    result = run_import(source, spec, commit=True)
    assert result.reroute.moved >= 1
    assert {Complaint.objects.get(pk=c.pk).area.name for c in near_edge} == {"Тверской"}
    assert_a_full_redecision_agrees()


def test_changing_a_categorys_radius_in_the_admin_reroutes_its_complaints(tmp_path, spec, owners,
                                                                       django_capture_on_commit_callbacks):
    from routing.models import Category

    a, b = owners
    rows = {"L1": ("streetlight", a, RED_SQUARE)}
    run_import(write(tmp_path, rows, "v1"), spec, commit=True)
    at_50m = make_complaint((RED_SQUARE[0] + 0.0008, RED_SQUARE[1]), "streetlight-out")  # about 50 m east
    pothole = make_complaint(RED_SQUARE, "yard-pothole")
    assert at_50m.decision.rule == "department"  # nothing within 30 m
    with django_capture_on_commit_callbacks(execute=True):
        lights = Category.objects.get(code="streetlight-out")
        lights.radius_m = 80
        lights.save()
    reroute_run()  # the worker's task, here (tests/queue/test_reroute_queue.py: on a worker)
    at_50m.refresh_from_db()
    assert at_50m.decision.rule == "facility_nearest" and at_50m.decision.facility.source_key == "L1"
    assert Complaint.objects.get(pk=pothole.pk).decision_id == pothole.decision_id
    assert_a_full_redecision_agrees()
