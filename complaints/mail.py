"""The tracking code and the confirmation key by e-mail, for residents who report through an integrator (Open311)
or leave an address on the site. Open311 never shows either (docs/open311.md), so without this a resident who
reported through a city app could not confirm or deny the department's answer. This mail goes to the complaint's
own address only: it is the one message that carries the code and the key.

Nothing is sent while a complaint is being filed: a POST only stores the complaint (with the address the resident
gave). `tracking_mail_send_pending()` (manage.py send_tracking_codes, run every minute or with --loop) later
mails every recent complaint with an address that has not had its mail, and records each attempt in TrackingMail.
A complaint whose mail went before there were confirmation keys (TrackingMail.with_key false) is mailed again,
whatever its age, while its resident may still confirm or deny (it is not closed).
"""
import datetime
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from .models import CLOSED_STATES, Complaint, State, TrackingMail
from .tracking import confirmation_key

SUBJECT = "Ваше обращение № {number} принято / Your report No. {number} has been received"
BODY = """Здравствуйте!

Ваше обращение № {number} «{category_ru}» принято и направлено: {department}.
Срок ответа: {deadline}.

Код отслеживания: {code}
Ключ подтверждения: {key}
Страница обращения: {url}

На этой странице видно, что происходит с обращением. Когда придёт ответ, там же можно подтвердить, что проблема
решена, или сообщить, что нет: для этого нужен ключ подтверждения. Не передавайте ключ никому и не пишите его
в тексты обращений: кто знает ключ, может закрыть обращение.

---

Your report No. {number} ({category_en}) has been received and sent to: {department}.
Answer due: {deadline}.

Tracking code: {code}
Confirmation key: {key}
Its page: {url}

The page shows where your report stands. When the answer comes, you can confirm there that the problem is fixed,
or say that it is not: this needs the confirmation key. Keep the key to yourself and out of any text you write in
a report: whoever has it can close the report.
"""


@dataclass
class MailRun:
    sent: int = 0
    failed: int = 0
    skipped_busy: bool = False  # another sender holds the lock


def tracking_mail_send_pending(*, limit=500) -> MailRun:
    """Mail the tracking code and key of each recent complaint that came with an e-mail address and has not had
    them (and the key to those that had a mail without it, while they are not closed).

    At most `limit` per call; one sender per complaint (a second sender skips the complaints the first one is
    mailing; skipped_busy when it skipped them all). A failure is recorded on the complaint's TrackingMail
    (attempts, last error) and tried again on the next call, up to TRACKING_MAIL_MAX_ATTEMPTS times.
    Hidden complaints get nothing; neither do complaints older than TRACKING_MAIL_MAX_AGE_DAYS (a late code is no
    use).
    """
    run = MailRun()
    since = timezone.now() - datetime.timedelta(days=settings.TRACKING_MAIL_MAX_AGE_DAYS)
    never_sent = (Q(submitted_at__gte=since) & ~Q(tracking_mail__sent_at__isnull=False)
                  & ~Q(tracking_mail__attempts__gte=settings.TRACKING_MAIL_MAX_ATTEMPTS))
    # Sent without a key: another try per failure, as many as the first mail had.
    without_key = (Q(tracking_mail__sent_at__isnull=False, tracking_mail__with_key=False)
                   & ~Q(state__in=CLOSED_STATES)
                   & Q(tracking_mail__attempts__lt=2 * settings.TRACKING_MAIL_MAX_ATTEMPTS))
    due = Complaint.objects.filter(never_sent | without_key).exclude(email="").exclude(state=State.HIDDEN)
    pending = list(due.select_related("category", "department__authority").order_by("submitted_at")[:limit])
    if not pending:
        return run
    busy = 0
    mailer = get_connection(fail_silently=False)
    try:
        for complaint in pending:
            # One sender per complaint: a transaction-level lock (it holds behind a transaction-mode pooler, where a
            # session lock would stay with whichever server connection took it), then a fresh look whether another
            # sender mailed it meanwhile. The attempt is recorded in the same transaction.
            with transaction.atomic():
                with connection.cursor() as cur:
                    cur.execute("SELECT pg_try_advisory_xact_lock(hashtext('geo_ourcity.tracking_mail'), "
                                "hashtext(%s::text))", [complaint.pk])
                    if not cur.fetchone()[0]:
                        busy += 1
                        continue
                if not due.filter(pk=complaint.pk).exists():
                    continue
                error = _send(mailer, complaint)
                _record(complaint, error)
                run.sent += error is None
                run.failed += error is not None
    finally:
        mailer.close()
    run.skipped_busy = busy == len(pending)
    return run


def tracking_mail_message(complaint, mailer=None):
    url = f"{settings.SITE_URL}/c/{complaint.tracking_code}/"
    deadline = timezone.localtime(complaint.deadline).strftime("%d.%m.%Y %H:%M") if complaint.deadline else "—"
    values = {"number": complaint.pk, "category_ru": complaint.category.name_ru,
              "category_en": complaint.category.name_en, "department": complaint.department.display_name,
              "deadline": deadline, "code": complaint.tracking_code, "key": confirmation_key(complaint), "url": url}
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
            mail.sent_at, mail.last_error, mail.with_key = timezone.now(), "", True
        else:
            mail.last_error = error
        mail.save()
