"""Complaints are filed and routed while a facilities import runs.

The import takes no lock that intake waits for until its switch, so a complaint filed while the import is held in
mid-run (dry run or commit, a dataset new to the registry or a new generation of one it has) is routed with the
registry as it stood; after the switch the new registry decides. The switch itself gives way to a long reader
(lock_timeout, then a retry) instead of queuing in front of every complaint, and gives up cleanly if the reader
never ends. Real commits: the import runs in a thread of its own, on its own database connection.
"""
import json
import threading
from urllib.parse import urlencode

import pytest
from django.db import connection, connections
from django.test import Client

from complaints.models import Complaint
from facilities.models import AdminArea, Dataset, Facility
from importers import load
from importers.core import Progress, run_import
from importers.errors import ImportFailure
from open311.keys import api_key_issue
from tests.conftest import point, write_geojson

RED_SQUARE = (37.6208, 55.7539)  # district Тверской
SERVICE = "streetlight-out"  # the nearest streetlight within 30 m decides; else the city's lighting department
SPEC = {"dataset": "intake-lights", "target": "facilities", "key": "id", "type": "streetlight",
        "types": {"streetlight": {"ru": "Фонарь", "en": "Street light"}},
        "owner": {"area_level": "district"}, "name": "name"}
# A generous bound for "did not wait on the import": a complaint that queues behind an exclusive lock fails.
LOCK_WAIT_LIMIT = "2s"


def lights_file(path, at):
    """A few streetlights; one of them (L0) at `at`, the rest a kilometre or more away from Red Square."""
    rows = [({"id": "L0", "name": "Фонарь L0"}, point(*at))]
    rows += [({"id": f"L{i}", "name": f"Фонарь L{i}"}, point(37.64 + i * 0.001, 55.745)) for i in range(1, 6)]
    return write_geojson(path, rows)


class Held(Progress):
    """Holds the import at the step named `at` (inside its transaction) until released."""

    def __init__(self, at):
        self.at, self.reached, self.release = at, threading.Event(), threading.Event()

    def step(self, name):
        if name == self.at:
            self.reached.set()
            assert self.release.wait(120), "the test never released the import"


class ImportThread(threading.Thread):
    def __init__(self, path, *, commit, progress):
        super().__init__(daemon=True)
        self.args, self.result, self.error = (path, commit, progress), None, None

    def run(self):
        path, commit, progress = self.args
        try:
            self.result = run_import(path, SPEC, commit=commit, progress=progress)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc
        finally:
            connection.close()

    def finish(self, progress):
        progress.release.set()
        self.join(120)
        assert not self.is_alive(), "the import did not finish"


@pytest.fixture
def api_key(demo_city):
    return api_key_issue(name="intake-test")[1]


def file_both_ways(api_key, at=RED_SQUARE):
    """One complaint through Open311 and one through the web report form; their complaints. A lock wait longer
    than LOCK_WAIT_LIMIT fails the request (and so the test) instead of hanging it."""
    with connection.cursor() as cur:
        cur.execute(f"SET lock_timeout = '{LOCK_WAIT_LIMIT}'")
    try:
        client = Client()
        r = client.post("/open311/v2/requests.json", urlencode({
            "api_key": api_key, "service_code": SERVICE, "long": str(at[0]), "lat": str(at[1]),
            "description": "Не горит фонарь", "email": "ivan@example.org"}),
            content_type="application/x-www-form-urlencoded")
        assert r.status_code == 201, r.content
        via_open311 = Complaint.objects.get(pk=r.json()[0]["service_request_id"])
        r = client.post("/report/", {"lon": at[0], "lat": at[1], "category": SERVICE, "description": "Темно",
                                     "email": "resident@example.com"}, HTTP_ACCEPT="application/json")
        assert r.status_code == 200, r.content
        via_web = Complaint.objects.get(tracking_code=json.loads(r.content)["tracking_code"])
    finally:
        with connection.cursor() as cur:
            cur.execute("SET lock_timeout = DEFAULT")
    return [via_open311, via_web]


def decided_by(complaints):
    """The source key of the facility that decided each complaint (None: no facility, the fallback rule)."""
    return [c.facility.source_key if c.facility_id else None for c in complaints]


def tverskoy_council():
    return AdminArea.objects.get(level="district", name="Тверской").authority


@pytest.mark.parametrize("commit", [True, False], ids=["commit", "dry-run"])
def test_a_complaint_is_routed_while_a_new_datasets_import_is_held_in_mid_run(api_key, tmp_path, commit):
    path = lights_file(tmp_path / "lights.geojson", at=RED_SQUARE)
    held = Held("finding owners by area")  # the rows are read, validated and copied; owners not yet found
    job = ImportThread(path, commit=commit, progress=held)
    job.start()
    try:
        assert held.reached.wait(60), job.error
        during = file_both_ways(api_key)
    finally:
        job.finish(held)
    assert job.error is None, job.error
    assert decided_by(during) == [None, None]  # the registry as it stood: no streetlight there yet
    assert {c.department.authority.code for c in during} == {"mossvet"}
    after = file_both_ways(api_key)
    if commit:
        assert job.result.counts["created"] == 6
        assert decided_by(after) == ["L0", "L0"]  # the new registry, at once
        assert {c.department.authority_id for c in after} == {tverskoy_council().pk}  # owner found by district
    else:
        assert decided_by(after) == [None, None] and not Facility.objects.filter(dataset__code="intake-lights")


def test_a_complaint_is_routed_while_a_new_generation_is_built(api_key, tmp_path):
    run_import(lights_file(tmp_path / "v1.geojson", at=RED_SQUARE), SPEC, commit=True)
    assert decided_by(file_both_ways(api_key)) == ["L0", "L0"]
    # The next file moves L0 a kilometre away: held after the comparison, before the new generation is built.
    held = Held("building the new generation")
    job = ImportThread(lights_file(tmp_path / "v2.geojson", at=(37.6208, 55.7639)), commit=True, progress=held)
    job.start()
    try:
        assert held.reached.wait(60), job.error
        during = file_both_ways(api_key)
    finally:
        job.finish(held)
    assert job.error is None, job.error
    assert decided_by(during) == ["L0", "L0"]  # the old generation still decides
    assert decided_by(file_both_ways(api_key)) == [None, None]  # L0 is gone from Red Square


class LongReader:
    """A second connection in an open transaction that has read facilities_facility (a report, a slow query)."""

    def __enter__(self):
        self.conn = connections.create_connection("default")
        self.conn.set_autocommit(False)
        with self.conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM facilities_facility")
        return self

    def __exit__(self, *exc):
        self.conn.rollback()
        self.conn.close()


class AtSwitch(Progress):
    def __init__(self):
        self.reached = threading.Event()

    def step(self, name):
        if name == "switching generations":
            self.reached.set()


def test_the_switch_gives_way_to_a_long_reader_instead_of_stalling_intake(api_key, tmp_path):
    run_import(lights_file(tmp_path / "v1.geojson", at=RED_SQUARE), SPEC, commit=True)
    at_switch = AtSwitch()
    with LongReader():
        # The re-import must detach the old generation (an exclusive lock), which the long reader holds off.
        job = ImportThread(lights_file(tmp_path / "v2.geojson", at=(37.6208, 55.7639)), commit=True,
                           progress=at_switch)
        job.start()
        assert at_switch.reached.wait(60), job.error
        threading.Event().wait(0.5)  # the switch is trying by now, and giving way
        during = file_both_ways(api_key)  # not queued behind the waiting switch
        assert job.is_alive()  # still waiting for its lock, not failed
    job.join(60)
    assert job.error is None, job.error
    assert job.result.counts["updated"] == 1
    assert decided_by(during) == ["L0", "L0"]
    assert decided_by(file_both_ways(api_key)) == [None, None]


def test_a_switch_that_never_gets_its_lock_fails_cleanly(api_key, tmp_path, monkeypatch):
    run_import(lights_file(tmp_path / "v1.geojson", at=RED_SQUARE), SPEC, commit=True)
    partition = Dataset.objects.get(code="intake-lights").partition_table
    before = sorted(Facility.objects.filter(dataset__code="intake-lights").values_list("id", "source_key", "geom"))
    monkeypatch.setattr(load, "SWITCH_PATIENCE_S", 0.5)
    with LongReader():
        with pytest.raises(ImportFailure, match="could not switch .* nothing was changed"):
            run_import(lights_file(tmp_path / "v2.geojson", at=(37.6208, 55.7639)), SPEC, commit=True)
    after = sorted(Facility.objects.filter(dataset__code="intake-lights").values_list("id", "source_key", "geom"))
    assert after == before
    assert Dataset.objects.get(code="intake-lights").partition_table == partition
    with connection.cursor() as cur:  # still the attached partition
        cur.execute("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'facilities_facility'::regclass")
        assert partition in {name for (name,) in cur.fetchall()}
    assert decided_by(file_both_ways(api_key)) == ["L0", "L0"]
