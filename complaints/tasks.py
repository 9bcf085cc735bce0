"""The complaints app's work on the task queue (geo_ourcity/celery.py; docs/deployment.md). Each task is
idempotent: the queue acknowledges a task only once it has run, so a task whose worker died runs again."""
import logging

from celery import shared_task
from celery.signals import worker_process_shutdown
from django.conf import settings
from django.utils import timezone

log = logging.getLogger(__name__)


@worker_process_shutdown.connect
def _close_mail_connection(**_kwargs):
    """A worker process that stops says goodbye to the mail server (complaints.outbox.process_mailer)."""
    from .outbox import process_mailer_close

    process_mailer_close()


class MailNotSent(Exception):
    """The mail server refused or failed; recorded on the Outbox row, tried again after its backoff."""


# The mail tasks keep no result (ignore_result): nobody reads it, and storing it cost a Redis write per mail.
@shared_task(bind=True, name="complaints.tasks.outbox_deliver", max_retries=None, ignore_result=True)
def outbox_deliver(self, dedupe_key):
    """Send one outbox mail if it is still due (complaints.outbox.outbox_send). A failure is recorded on the row
    and this task runs again when the row's next try is due; once the row gives up (failed), so does the task."""
    from .models import Outbox
    from .outbox import outbox_send_key

    outcome = outbox_send_key(dedupe_key)
    if outcome == "failed":
        entry = Outbox.objects.filter(dedupe_key=dedupe_key, state=Outbox.State.PENDING).first()
        if entry is not None:
            wait = max((entry.next_attempt_at - timezone.now()).total_seconds(), 0)
            raise self.retry(exc=MailNotSent(f"outbox mail {dedupe_key} not sent (attempt {entry.attempts})"),
                             countdown=wait)
    return outcome


@shared_task(name="complaints.tasks.outbox_deliver_for", ignore_result=True)
def outbox_deliver_for(complaint_ids):
    """The due outbox mails of these complaints (a change's event mails, complaints.notify), on one SMTP
    connection. A failed one is handed to its own outbox_deliver task (retried with backoff); one busy with
    another sender is that sender's."""
    from .models import Outbox
    from .outbox import outbox_send_for

    ids = [int(i) for i in complaint_ids][:1000]
    run = outbox_send_for(ids)
    if run.failed:  # each failed row is retried by its own task, with its backoff (outbox_deliver)
        for key, due in Outbox.objects.filter(pk__in=run.failed_ids, state=Outbox.State.PENDING) \
                .values_list("dedupe_key", "next_attempt_at"):
            outbox_deliver.apply_async((key,), countdown=max((due - timezone.now()).total_seconds(), 0))
    return {"sent": run.sent, "failed": run.failed, "cancelled": run.cancelled, "busy": run.skipped_busy}


@shared_task(name="complaints.tasks.alerts_sweep")
def alerts_sweep():
    """Every minute (celery beat): the immediate area alerts of the complaints filed since the last sweep."""
    from .notify import alerts_sweep as sweep

    return sweep()


@shared_task(name="complaints.tasks.alerts_digest")
def alerts_digest():
    """Once a day (celery beat): the daily digests of the area alerts."""
    from .notify import alerts_digest as digest

    return digest()


@shared_task(name="complaints.tasks.outbox_sweep")
def outbox_sweep():
    """Every minute (celery beat): every outbox mail still due, whatever happened to its own task."""
    from .outbox import outbox_send_due

    run = outbox_send_due()
    if run.sent or run.failed:
        log.info("outbox sweep: %d sent, %d failed, %d cancelled, %d held by another sender", run.sent, run.failed,
                 run.cancelled, run.skipped_busy)
    return {"sent": run.sent, "failed": run.failed, "cancelled": run.cancelled, "busy": run.skipped_busy}


@shared_task(name="complaints.tasks.overdue_mark")
def overdue_mark():
    """Every five minutes (celery beat): mark the complaints that are past their deadline while still open."""
    from .overdue import complaints_mark_overdue

    return complaints_mark_overdue()


@shared_task(bind=True, name="complaints.tasks.reroute_run", max_retries=settings.CELERY_TASK_MAX_RETRIES)
def reroute_run(self):
    """The pending re-routes (routing.requests), taken together and applied in one transaction: a burst of edits
    is one re-route. Killed mid-way, nothing is applied and the requests stay pending: the task runs again
    (acks late), or the sweep finds them. A failure is recorded on them and retried with backoff."""
    from routing.requests import reroute_batch, reroute_failed
    from .services import complaints_reroute

    try:
        with reroute_batch() as batch:
            if batch is None:
                return {"requests": 0}
            batch.result = complaints_reroute(reason=batch.reason, **batch.kwargs)
    except Exception as exc:
        log.exception("re-route failed")
        reroute_failed(f"{exc.__class__.__name__}: {exc}")
        raise self.retry(exc=exc, countdown=min(settings.CELERY_TASK_RETRY_BACKOFF * 2 ** self.request.retries,
                                                settings.CELERY_TASK_RETRY_BACKOFF_MAX))
    return {"requests": len(batch.requests), "moved": batch.result.moved, "considered": batch.result.considered}


@shared_task(name="complaints.tasks.reroute_sweep")
def reroute_sweep():
    """Every minute (celery beat): re-routes still pending (their wake-up was lost) are run."""
    from routing.requests import reroute_pending_count

    if reroute_pending_count():
        reroute_run.delay()


@shared_task(name="complaints.tasks.confirmations_close")
def confirmations_close():
    """Every few minutes (celery beat): answered complaints whose confirmation window ended in silence are
    resolved without confirmation (complaints.cycle)."""
    from .cycle import confirmations_close as close

    return close()


@shared_task(name="complaints.tasks.confirmations_remind")
def confirmations_remind():
    """Every few minutes (celery beat): the reminder mails before the confirmation windows end (complaints.cycle)."""
    from .cycle import confirmations_remind as remind

    return remind()


# --- the outbox relay: runs in every worker (the main process), not in the web requests -------------------------

class OutboxRelay:
    """A thread of the worker's main process that calls complaints.outbox.outbox_relay every OUTBOX_RELAY_EVERY
    seconds (and at once when a pass found a full batch): the new outbox rows' tasks are queued by the worker, so the
    request that wrote a mail only writes its row. Started when the worker is ready, stopped when it shuts down
    (Celery's worker_ready / worker_shutdown signals)."""

    def __init__(self, every):
        import threading

        self.every, self.stopping = every, threading.Event()
        self.thread = threading.Thread(target=self.run, name="outbox-relay", daemon=True)

    def run(self):
        from django.db import connection

        from .outbox import outbox_relay

        batch = 500
        while not self.stopping.is_set():
            full = False
            try:
                full = len(outbox_relay(limit=batch)) == batch
            except Exception:  # noqa: BLE001 - the database or the broker away: try again next pass
                log.exception("outbox relay pass failed")
            finally:
                # No connection is kept between passes: a pool process forked while one is open would inherit its
                # socket, and its copy of this thread's connection, dropped in the child, would end the session.
                connection.close()
            if not full:
                self.stopping.wait(self.every)


_relay = None


def _relay_start(**_kwargs):
    global _relay
    if settings.OUTBOX_RELAY_EVERY > 0 and _relay is None:
        _relay = OutboxRelay(settings.OUTBOX_RELAY_EVERY)
        _relay.thread.start()


def _relay_stop(**_kwargs):
    if _relay is not None:
        _relay.stopping.set()
        _relay.thread.join(timeout=10)


def _connect_relay():
    from celery.signals import worker_ready, worker_shutdown

    worker_ready.connect(_relay_start, weak=False, dispatch_uid="complaints.outbox_relay.start")
    worker_shutdown.connect(_relay_stop, weak=False, dispatch_uid="complaints.outbox_relay.stop")


_connect_relay()
