"""The tracking code and the confirmation key by e-mail, for residents who report through an integrator (Open311)
or leave an address on the site. Open311 never shows either (docs/open311.md), so without this a resident who
reported through a city app could not confirm or deny the department's answer. This mail goes to the complaint's
own address only: it is the one message that carries the code and the key.

Nothing is sent while a complaint is being filed: a POST only stores the complaint (with the address the resident
gave), which is the outbox entry, in the same transaction. Once that transaction commits, the task queue gets one
task for that mail (complaints.tasks.tracking_mail_deliver: sent by a worker, retried with backoff); the
scheduler's sweep every minute (complaints.tasks.tracking_mail_sweep) and `manage.py send_tracking_codes` mail
whatever is still due, so a lost task loses nothing. Each attempt is recorded in TrackingMail.
A complaint whose mail went before there were confirmation keys (TrackingMail.with_key false) is mailed again,
whatever its age, while its resident may still confirm or deny (it is not closed).
"""
import datetime
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Q
from django.utils import formats, timezone, translation
from django.utils.translation import gettext, gettext_noop

from geo_ourcity.languages import default_content_language

from .models import CLOSED_STATES, Complaint, State, TrackingMail
from .tracking import confirmation_key

# In the city's default language (LANGUAGE_CODE; the Russian text is in locale/ru), English where it has none.
SUBJECT = gettext_noop("Your report No. %(number)s has been received")
BODY = gettext_noop("""Hello,

Your report No. %(number)s (%(category)s) has been received and sent to: %(department)s.
Answer due: %(deadline)s.

Tracking code: %(code)s
Confirmation key: %(key)s
Its page: %(url)s

The page shows where your report stands. When the answer comes, you can confirm there that the problem is fixed,
or say that it is not: this needs the confirmation key. Keep the key to yourself and out of any text you write in
a report: whoever has it can close the report.
""")


class MailNotSent(Exception):
    """The mail server refused or failed; recorded on the TrackingMail, tried again (by the task's retry)."""


@dataclass
class MailRun:
    sent: int = 0
    failed: int = 0
    skipped_busy: int = 0  # held by another sender at that moment (it sends them)


def tracking_mail_pending_ids(*, limit=500):
    """The complaints whose tracking mail is due, oldest first: recent ones that came with an e-mail address and
    have not had it (and those whose mail went without the key, while they are not closed). The complaint row is
    the outbox entry, written in the transaction that files it; its TrackingMail records the attempts."""
    return list(_due(Complaint.objects.all()).order_by("submitted_at").values_list("pk", flat=True)[:limit])


def _due(complaints):
    since = timezone.now() - datetime.timedelta(days=settings.TRACKING_MAIL_MAX_AGE_DAYS)
    never_sent = (Q(submitted_at__gte=since) & ~Q(tracking_mail__sent_at__isnull=False)
                  & ~Q(tracking_mail__attempts__gte=settings.TRACKING_MAIL_MAX_ATTEMPTS))
    # Sent without a key: another try per failure, as many as the first mail had.
    without_key = (Q(tracking_mail__sent_at__isnull=False, tracking_mail__with_key=False)
                   & ~Q(state__in=CLOSED_STATES)
                   & Q(tracking_mail__attempts__lt=2 * settings.TRACKING_MAIL_MAX_ATTEMPTS))
    return complaints.filter(never_sent | without_key).exclude(email="").exclude(state=State.HIDDEN)


def tracking_mail_send(complaint_id, *, mailer=None):
    """Send one complaint's tracking mail if it is due: "sent", "failed" (recorded, to be tried again), "busy"
    (another sender holds it now) or "not due" (sent already, no address, hidden, too old, out of attempts).

    Idempotent and never twice at once: the TrackingMail row is locked (FOR UPDATE SKIP LOCKED) for the whole
    send, and the outcome is written in that same transaction, so a second sender skips it and then finds it
    sent. A sender killed mid-send leaves no trace but the empty row (its transaction rolls back) and the mail
    stays due. (A server that accepted the message just before the sender died may see it once more: SMTP has no
    way to say "once".)
    """
    if not _due(Complaint.objects.filter(pk=complaint_id)).exists():
        return "not due"
    # The lock's row, made once per complaint and committed at once (a row still being inserted by another
    # sender could not be skipped, only waited for). No lock on the complaint itself: staff actions take that.
    TrackingMail.objects.bulk_create([TrackingMail(complaint_id=complaint_id, to="")], ignore_conflicts=True)
    with transaction.atomic():
        mail = TrackingMail.objects.select_for_update(skip_locked=True).filter(complaint_id=complaint_id).first()
        if mail is None:
            return "busy"
        complaint = (_due(Complaint.objects.filter(pk=complaint_id))  # again, under the lock: sent just now?
                     .select_related("category", "department__authority").first())
        if complaint is None:
            return "not due"
        own = mailer is None
        mailer = mailer or get_connection(fail_silently=False)
        try:
            error = _send(mailer, complaint)
        finally:
            if own:
                mailer.close()
        mail.to, mail.attempts = complaint.email, mail.attempts + 1
        if error is None:
            mail.sent_at, mail.last_error, mail.with_key = timezone.now(), "", True
        else:
            mail.last_error = error
        mail.save()
        return "sent" if error is None else "failed"


def tracking_mail_send_pending(*, limit=500) -> MailRun:
    """Mail every complaint whose tracking mail is due (at most `limit`), one by one through
    tracking_mail_send: `manage.py send_tracking_codes` and the queue's sweep. A failure is recorded on the
    complaint's TrackingMail (attempts, last error) and tried again later, up to TRACKING_MAIL_MAX_ATTEMPTS times.
    Hidden complaints get nothing; neither do complaints older than TRACKING_MAIL_MAX_AGE_DAYS (a late code is no
    use). Two senders at once share the work: each skips the mails the other holds.
    """
    run = MailRun()
    pending = tracking_mail_pending_ids(limit=limit)
    if not pending:
        return run
    mailer = get_connection(fail_silently=False)
    try:
        for complaint_id in pending:
            outcome = tracking_mail_send(complaint_id, mailer=mailer)
            run.sent += outcome == "sent"
            run.failed += outcome == "failed"
            run.skipped_busy += outcome == "busy"
    finally:
        mailer.close()
    return run


def tracking_mail_message(complaint, mailer=None):
    url = f"{settings.SITE_URL}/c/{complaint.tracking_code}/"
    lang = default_content_language()
    with translation.override(settings.LANGUAGE_CODE):
        deadline = (formats.date_format(timezone.localtime(complaint.deadline), "SHORT_DATETIME_FORMAT")
                    if complaint.deadline else "—")
        category = getattr(complaint.category, f"name_{lang}") or complaint.category.name_en or complaint.category.code
        values = {"number": complaint.pk, "category": category, "department": complaint.department.display_name,
                  "deadline": deadline, "code": complaint.tracking_code, "key": confirmation_key(complaint), "url": url}
        subject, body = gettext(SUBJECT) % values, gettext(BODY) % values
    return EmailMessage(subject=subject, body=body, to=[complaint.email], connection=mailer)


def _send(mailer, complaint):
    """None if the message went, else what went wrong (one line)."""
    try:
        mailer.open()  # no-op when open; reopens after a dropped SMTP connection
        tracking_mail_message(complaint, mailer).send()
    except Exception as exc:  # noqa: BLE001 - any failure of the mail server is recorded and tried again later
        return f"{exc.__class__.__name__}: {exc}"[:1000]
    return None

