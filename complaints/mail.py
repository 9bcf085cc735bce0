"""The tracking code by e-mail, for residents who report through an integrator (Open311) or leave an address on
the site. Open311 never shows a tracking code (docs/open311.md), so without this a resident who reported through
a city app could not confirm or deny the department's answer.

Nothing is sent while a complaint is being filed: a POST only stores the complaint (with the address the resident
gave). `tracking_mail_send_pending()` (manage.py send_tracking_codes, run every minute or with --loop) later
mails every recent complaint with an address that has not had its mail, and records each attempt in TrackingMail.
"""
import datetime
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.utils import timezone

from .models import Complaint, State, TrackingMail

SUBJECT = "Ваше обращение № {number} принято / Your report No. {number} has been received"
BODY = """Здравствуйте!

Ваше обращение № {number} «{category_ru}» принято и направлено: {department}.
Срок ответа: {deadline}.

Код отслеживания: {code}
Страница обращения: {url}

На этой странице видно, что происходит с обращением. Когда придёт ответ, там же можно подтвердить, что проблема
решена, или сообщить, что нет. Не передавайте код другим: кто знает код, может закрыть обращение.

---

Your report No. {number} ({category_en}) has been received and sent to: {department}.
Answer due: {deadline}.

Tracking code: {code}
Its page: {url}

The page shows where your report stands. When the answer comes, you can confirm there that the problem is fixed,
or say that it is not. Keep the code to yourself: whoever has it can close the report.
"""


@dataclass
class MailRun:
    sent: int = 0
    failed: int = 0
    skipped_busy: bool = False  # another sender holds the lock


def tracking_mail_send_pending(*, limit=500) -> MailRun:
    """Mail the tracking code of each recent complaint that came with an e-mail address and has not had it.

    At most `limit` per call; one sender at a time (a second one returns at once). A failure is recorded on the
    complaint's TrackingMail (attempts, last error) and tried again on the next call, up to
    TRACKING_MAIL_MAX_ATTEMPTS times. Hidden complaints get nothing; neither do complaints older than
    TRACKING_MAIL_MAX_AGE_DAYS (a late code is no use).
    """
    run = MailRun()
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(hashtext('geo_ourcity.tracking_mail'))")
        if not cur.fetchone()[0]:
            run.skipped_busy = True
            return run
    try:
        since = timezone.now() - datetime.timedelta(days=settings.TRACKING_MAIL_MAX_AGE_DAYS)
        pending = (Complaint.objects.filter(submitted_at__gte=since).exclude(email="").exclude(state=State.HIDDEN)
                   .exclude(tracking_mail__sent_at__isnull=False)
                   .exclude(tracking_mail__attempts__gte=settings.TRACKING_MAIL_MAX_ATTEMPTS)
                   .select_related("category", "department__authority").order_by("submitted_at")[:limit])
        pending = list(pending)
        if not pending:
            return run
        mailer = get_connection(fail_silently=False)
        try:
            for complaint in pending:
                error = _send(mailer, complaint)
                _record(complaint, error)
                run.sent += error is None
                run.failed += error is not None
        finally:
            mailer.close()
        return run
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(hashtext('geo_ourcity.tracking_mail'))")


def tracking_mail_message(complaint, mailer=None):
    url = f"{settings.SITE_URL}/c/{complaint.tracking_code}/"
    deadline = timezone.localtime(complaint.deadline).strftime("%d.%m.%Y %H:%M") if complaint.deadline else "—"
    values = {"number": complaint.pk, "category_ru": complaint.category.name_ru,
              "category_en": complaint.category.name_en, "department": complaint.department.display_name,
              "deadline": deadline, "code": complaint.tracking_code, "url": url}
    return EmailMessage(subject=SUBJECT.format(**values), body=BODY.format(**values), to=[complaint.email],
                        connection=mailer)


def _send(mailer, complaint):
    """None if the message went, else what went wrong (one line)."""
    try:
        mailer.open()  # no-op when open; reopens after a dropped SMTP connection
        tracking_mail_message(complaint, mailer).send()
    except Exception as exc:  # noqa: BLE001 - any failure of the mail server is recorded and tried again later
        return f"{exc.__class__.__name__}: {exc}"[:1000]
    return None


def _record(complaint, error):
    with transaction.atomic():
        mail, _created = TrackingMail.objects.select_for_update().get_or_create(
            complaint=complaint, defaults={"to": complaint.email})
        mail.to, mail.attempts = complaint.email, mail.attempts + 1
        if error is None:
            mail.sent_at, mail.last_error = timezone.now(), ""
        else:
            mail.last_error = error
        mail.save()
