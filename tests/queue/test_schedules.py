"""The scheduler's work on a real celery beat and a real worker: the overdue marks (a complaint still open past its
deadline is marked once, with one staff-only line in its history; closed ones and ones not yet due are not) and
the statistics snapshot the public page reads."""
import datetime
import subprocess
import sys

import pytest
from django.utils import timezone

from complaints.models import Complaint, ComplaintEvent, State
from complaints.tasks import overdue_mark
from web.models import StatisticsSnapshot

from .conftest import ROOT, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def beat(worker_env, tmp_path):
    """celery beat with the overdue marks and the statistics every second."""
    env = {**worker_env["env"], "OURCITY_OVERDUE_EVERY": "1", "OURCITY_STATISTICS_EVERY": "1",
           "OURCITY_CELERY_BEAT_SCHEDULE": str(tmp_path / "beat-schedule")}
    log = tmp_path / "beat.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "geo_ourcity", "beat", "-l", "info"], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT, process_group=0)
    yield proc
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def tickets(demo_city, service):
    from complaints.services import complaint_create

    def make(state, deadline_delta):
        c = complaint_create(category=service, point=(37.6208, 55.7539), description="Яма", attributes={"kind": "hole"})
        Complaint.objects.filter(pk=c.pk).update(state=state, deadline=timezone.now() + deadline_delta)
        return Complaint.objects.get(pk=c.pk)

    return {"late": make(State.IN_PROGRESS, -datetime.timedelta(hours=1)),
            "late reopened": make(State.REOPENED, -datetime.timedelta(days=3)),
            "due later": make(State.ASSIGNED, datetime.timedelta(days=2)),
            "late but resolved": make(State.RESOLVED, -datetime.timedelta(hours=1))}


def overdue_events(complaint):
    return ComplaintEvent.objects.filter(complaint=complaint, kind=ComplaintEvent.Kind.OVERDUE)


def test_the_scheduler_marks_overdue_complaints_once(worker, beat, tickets):
    late = [tickets["late"], tickets["late reopened"]]
    wait_until(lambda: all(Complaint.objects.get(pk=c.pk).overdue_at for c in late), seconds=90,
               what="beat and the worker to mark them")
    # beat runs the statistics every second, from before these tickets were filed: wait for a snapshot taken after
    marked = max(Complaint.objects.get(pk=c.pk).overdue_at for c in late)
    wait_until(lambda: StatisticsSnapshot.objects.filter(computed_at__gt=marked).exists(), seconds=60,
               what="a statistics snapshot taken after the marks")
    assert overdue_mark.delay().get(timeout=60) == 0  # run again: nothing marked twice
    for c in late:
        (event,) = overdue_events(c)
        assert not event.public and event.from_state == event.to_state == c.state and event.actor_label == \
            "system:overdue"
    for name in ("due later", "late but resolved"):
        c = Complaint.objects.get(pk=tickets[name].pk)
        assert c.overdue_at is None and not overdue_events(c).exists(), name
    snapshot = StatisticsSnapshot.objects.latest()
    assert snapshot.figures["open_overdue"] == 2
