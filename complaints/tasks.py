"""The complaints app's work on the task queue (geo_ourcity/celery.py; docs/deployment.md). Each task is
idempotent: the queue acknowledges a task only once it has run, so a task whose worker died runs again."""
import logging

from celery import shared_task
from django.conf import settings

from .mail import MailNotSent, tracking_mail_send, tracking_mail_send_pending

log = logging.getLogger(__name__)


def tracking_mail_enqueue(complaint_id):
    """After the commit that filed the complaint (transaction.on_commit): its tracking mail, on the queue. If the
    broker is down the task is lost, not the mail: the sweep finds it due within a minute."""
    tracking_mail_deliver.delay(complaint_id)


@shared_task(bind=True, name="complaints.tasks.tracking_mail_deliver", autoretry_for=(MailNotSent,), ignore_result=True,
             retry_backoff=settings.CELERY_TASK_RETRY_BACKOFF, retry_backoff_max=settings.CELERY_TASK_RETRY_BACKOFF_MAX,
             retry_jitter=True, max_retries=settings.CELERY_TASK_MAX_RETRIES)
def tracking_mail_deliver(self, complaint_id):
    """Send one complaint's tracking mail if it is still due (complaints.mail.tracking_mail_send); a mail server
    failure is recorded and retried with backoff (and, past the retries, left to the sweep)."""
    outcome = tracking_mail_send(complaint_id)
    if outcome == "failed":
        raise MailNotSent(f"tracking mail of complaint {complaint_id} not sent (attempt {self.request.retries + 1})")
    return outcome


@shared_task(name="complaints.tasks.tracking_mail_sweep")
def tracking_mail_sweep():
    """Every minute (celery beat): every tracking mail still due, whatever happened to its own task."""
    run = tracking_mail_send_pending()
    if run.sent or run.failed:
        log.info("tracking mail sweep: %d sent, %d failed, %d held by another sender", run.sent, run.failed,
                 run.skipped_busy)
    return {"sent": run.sent, "failed": run.failed, "busy": run.skipped_busy}
