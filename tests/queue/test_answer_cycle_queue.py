"""The answer cycle's scheduled work on a real celery beat and a real worker (issue 10): a confirmation window that
ended in silence is closed as resolved without confirmation, once; a window about to end gets one reminder mail,
sent through the outbox to a real SMTP server (aiosmtpd); a running window and a resolved complaint are left
alone. Run again through the worker, the tasks do nothing twice."""
import datetime
import subprocess
import sys

import pytest
from django.utils import timezone

from complaints.mails import CONFIRM_REMINDER
from complaints.models import Complaint, ComplaintEvent, Outbox, State
from complaints.tasks import confirmations_close, confirmations_remind

from .conftest import ROOT, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _clean_mailbox(smtp):
    smtp.reset()
    yield
    smtp.reset()


@pytest.fixture
def beat(worker_env, tmp_path):
    """celery beat with the answer cycle's passes every second."""
    env = {**worker_env["env"], "OURCITY_CONFIRMATIONS_EVERY": "1", "OURCITY_CONFIRM_REMINDER_DAYS": "3",
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
    # The module's worker takes one task at a time, in order: once this one is done, so is every pass beat queued
    # before it stopped. Else one could still be writing while the test's database is flushed (a deadlock there).
    confirmations_close.delay().get(timeout=60)


@pytest.fixture
def answered(demo_city, service):
    from complaints.services import complaint_create

    def make(confirm_in, state=State.ANSWERED, email="resident@example.org"):
        c = complaint_create(category=service, point=(37.6208, 55.7539), description="Яма", attributes={"kind": "hole"})
        now = timezone.now()
        Complaint.objects.filter(pk=c.pk).update(state=state, answered_at=now, confirm_until=now + confirm_in,
                                                 email=email)
        return Complaint.objects.get(pk=c.pk)

    return make


def test_beat_closes_ended_windows_and_reminds_before_the_end(worker, beat, smtp, answered):
    ended = answered(-datetime.timedelta(minutes=1))
    ending = answered(datetime.timedelta(days=2))
    running = answered(datetime.timedelta(days=10))
    resolved = answered(-datetime.timedelta(days=1), state=State.RESOLVED)

    wait_until(lambda: Complaint.objects.get(pk=ended.pk).state == State.RESOLVED, seconds=90,
               what="beat and the worker to close the ended window")
    wait_until(lambda: any(f"/c/{ending.tracking_code}/" in m for m in smtp.delivered)
               and Outbox.objects.filter(complaint=ending, kind=CONFIRM_REMINDER, state=Outbox.State.SENT).exists(),
               seconds=90, what="the reminder mail at the SMTP server, and its outbox row marked sent")

    ended.refresh_from_db()
    assert ended.resolved_unconfirmed and ended.resolved_at is not None
    (event,) = ComplaintEvent.objects.filter(complaint=ended, kind=ComplaintEvent.Kind.UNCONFIRMED)
    assert event.public and (event.from_state, event.to_state) == (State.ANSWERED, State.RESOLVED)

    (mail,) = [m for m in smtp.delivered if f"/c/{ending.tracking_code}/" in m]
    assert "To: resident@example.org" in mail and f" {ending.pk} " in mail
    reminder = Outbox.objects.get(complaint=ending, kind=CONFIRM_REMINDER)
    assert reminder.state == Outbox.State.SENT and reminder.attempts == 1

    # Through the worker again: nothing closed or written twice, and nothing for the others.
    assert confirmations_close.delay().get(timeout=60) == 0
    assert confirmations_remind.delay().get(timeout=60) == 0
    assert Outbox.objects.filter(kind=CONFIRM_REMINDER).count() == 1
    assert sum(f"/c/{ending.tracking_code}/" in m for m in smtp.delivered) == 1
    for c, state in ((ending, State.ANSWERED), (running, State.ANSWERED), (resolved, State.RESOLVED)):
        c.refresh_from_db()
        assert c.state == state and not c.resolved_unconfirmed
        assert not ComplaintEvent.objects.filter(complaint=c, kind=ComplaintEvent.Kind.UNCONFIRMED).exists()
    assert not Outbox.objects.filter(kind=CONFIRM_REMINDER, complaint__in=[ended, running, resolved]).exists()
