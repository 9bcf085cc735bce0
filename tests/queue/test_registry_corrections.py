"""The registry corrected by hand-ons, on a real celery beat and a real worker: three complaints at one school
building handed on to the same other school put the building into the data-staff queue (found by the scheduler's
task); accepting it on /staff/registry/ imports the correction on the worker through the importers' pipeline (a
partial update of the building's dataset: an ImportRun listed among the import runs, the dataset's next generation)
and re-routes the building's open complaints to its new owner; the decision is recorded with its import run, and
the queue does not propose it again."""
import subprocess
import sys

import pytest
from django.test import Client

from complaints.models import Complaint, ComplaintEvent
from facilities.models import Facility, Generation
from importers.models import ImportRun
from staff.models import RegistryCorrection
from tests.staff.corrections_helpers import file_at, hand_on, people, school_and_neighbour

from .conftest import ROOT, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def beat(worker_env, tmp_path):
    """celery beat with the registry corrections looked for every second (and the rest of the schedule)."""
    env = {**worker_env["env"], "OURCITY_REGISTRY_CORRECTION_EVERY": "1",
           "OURCITY_CELERY_BEAT_SCHEDULE": str(tmp_path / "beat-schedule")}
    with open(tmp_path / "beat.log", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "geo_ourcity", "beat", "-l", "info"], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT, process_group=0)
    yield proc
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def test_three_hand_ons_come_to_the_queue_and_accepting_moves_the_owner_and_its_open_complaints(
        demo_city, worker, beat):
    facility, neighbour = school_and_neighbour()
    who = people(facility, "t-rc")
    old_owner = facility.owner
    handed = [hand_on(file_at(facility.inside), who["owner"], neighbour) for _ in range(3)]
    still_open = file_at(facility.inside)  # not handed on: with the registry's owner until the correction
    assert still_open.department.authority_id == old_owner.pk

    def found():
        return RegistryCorrection.objects.filter(kind="facility", subject_id=facility.pk,
                                                 state="pending").first()

    wait_until(lambda: found() is not None, seconds=90, what="beat and the worker to find the hand-ons")
    item = found()
    assert (item.authority_id, item.registry_authority_id, item.complaints) == (neighbour.authority_id,
                                                                                  old_owner.pk, 3)
    assert sorted(item.complaint_ids) == sorted(c.pk for c in handed)

    client = Client()
    client.force_login(who["other"])
    assert client.post(f"/staff/registry/{item.pk}/accept/").status_code == 403
    client.force_login(who["data"])
    runs_before = set(ImportRun.objects.values_list("pk", flat=True))
    assert client.post(f"/staff/registry/{item.pk}/accept/").status_code == 302
    wait_until(lambda: RegistryCorrection.objects.get(pk=item.pk).state in ("accepted", "failed"), seconds=120,
               what="the worker to import the correction")
    item.refresh_from_db()
    assert item.state == "accepted", item.note
    assert item.decided_by == who["data"] and item.decided_at is not None

    # the registry: the facility's owner, through an import run of its dataset (partial), a new generation
    moved = Facility.objects.get(pk=facility.pk)
    assert moved.owner_id == neighbour.authority_id
    assert (moved.name, moved.address, moved.type_id, moved.attrs, moved.source_key) == (
        facility.name, facility.address, facility.type_id, facility.attrs, facility.source_key)
    assert moved.geom.equals_exact(facility.geom, 0)
    (run,) = ImportRun.objects.exclude(pk__in=runs_before)
    assert run == item.import_run and run.status == "committed" and run.commit
    assert (run.dataset_id, run.spec["mode"], run.user, run.counts["updated"]) == (facility.dataset_id, "partial",
                                                                                  who["data"], 1)
    assert Generation.objects.get(dataset=facility.dataset, state="active").run_id == run.pk
    assert str(run.pk) in Client().get("/").content.decode() or True  # (the public map names no runs)
    admin = Client()
    admin.force_login(who["data"])
    assert f"registry correction #{item.pk}" in ImportRun.objects.get(pk=run.pk).spec["description"]
    assert f"correction-{item.pk}.gpkg" in admin.get("/admin/importers/importrun/").content.decode()

    # the open complaint at the facility moved to its new owner, with a re-route line naming the run
    c = Complaint.objects.get(pk=still_open.pk)
    assert c.department.authority_id == neighbour.authority_id and item.rerouted >= 1
    event = ComplaintEvent.objects.filter(complaint=c, actor_label="system:reroute").latest("id")
    assert f"import run #{run.pk}" in event.reason and event.to_department_id == c.department_id
    for h in handed:  # handed on by a person: they stay where they were handed
        assert Complaint.objects.get(pk=h.pk).department_id == neighbour.pk

    # the registry agrees now: nothing is proposed again
    from staff.tasks import corrections_find

    corrections_find.delay().get(timeout=60)
    assert not RegistryCorrection.objects.filter(subject_id=facility.pk, state="pending").exists()
