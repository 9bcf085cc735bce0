"""`make demo`'s launcher (scripts/serve.py) runs the task queue's worker and its scheduler beside the web server,
as the same unprivileged user, and stops them with it: a mail written through the web server is sent by that worker,
one whose task was lost is found by that scheduler's sweep, and nothing of the three outlives the launcher."""
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest

from complaints.models import Complaint, Outbox
from tests.queue.conftest import smtp, wait_until, worker_env  # noqa: F401 - the queue's fixtures

from . import test_serve as serve
from .test_serve import db_name  # noqa: F401 - the launcher uses the test database

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(db_name, worker_env):  # noqa: F811
    """The launcher as `make demo` starts it (Makefile): gunicorn behind nginx, `celery worker` and `celery beat`."""
    queue_env = {k: v for k, v in worker_env["env"].items() if k.startswith("OURCITY_")}
    queue_env.pop("OURCITY_DB_NAME", None)  # the launcher sets it
    celery = f"{sys.executable} -m celery -A geo_ourcity"
    launcher = serve.Launcher(
        db_name,
        "--process", f"worker={celery} worker -l info --concurrency 1 --without-gossip --without-mingle "
                     f"-n demo-{uuid.uuid4().hex[:8]}@%h",
        "--process", f"beat={celery} beat -l info",
        OURCITY_OUTBOX_SWEEP_EVERY="2", **queue_env)
    try:
        launcher.wait_ready()
        wait_until(lambda: " ready." in launcher.text(), seconds=90, what="the worker under the launcher")
        yield launcher
    finally:
        launcher.cleanup()


def test_the_launcher_runs_the_worker_and_the_scheduler_and_stops_them_together(demo, smtp, demo_city):  # noqa: F811
    from tests.open311.conftest import make_service

    smtp.reset()
    service = make_service()
    # The task of this mail is "lost" (no enqueue, as when Redis was down at the commit): only the sweep that the
    # launcher's scheduler sends every 2 s, run by the launcher's worker, can send it.
    from complaints.services import complaint_create

    made = complaint_create(category=service, point=(37.6208, 55.7539), description="Яма у подъезда",
                            attributes={"kind": "hole"})
    Complaint.objects.filter(pk=made.pk).update(email="lost@example.org")
    complaint = Complaint.objects.get(pk=made.pk)
    Outbox.objects.create(kind="tracking", recipient=complaint.email, dedupe_key=f"tracking:{complaint.pk}",
                          complaint=complaint, language="en")
    wait_until(lambda: Outbox.objects.filter(pk__isnull=False, sent_at__isnull=False,
                                             dedupe_key=f"tracking:{complaint.pk}").exists(),
               seconds=90, what="the scheduler's sweep, run by the launcher's worker")
    assert sum(complaint.tracking_code in m for m in smtp.delivered) == 1
    # Its link points at the address the launcher serves on (another port than 8000: issue 10 §5).
    assert f"http://127.0.0.1:{demo.port}/c/{complaint.tracking_code}/" in smtp.delivered[0]
    assert "Sending due task sweep-outbox" in demo.text()

    running = demo.descendants()
    commands = [cmdline(pid) for pid in running]
    assert any("celery" in c and " worker " in c for c in commands), commands
    assert any("celery" in c and " beat " in c for c in commands), commands
    demo.proc.send_signal(signal.SIGTERM)
    assert demo.proc.wait(timeout=60) == 0
    time.sleep(0.5)
    assert not [pid for pid in running if Path(f"/proc/{pid}").exists()]


def cmdline(pid):
    try:
        return " " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
