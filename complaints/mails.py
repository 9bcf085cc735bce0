"""The kinds of mail this app sends, each a renderer on the outbox (complaints.outbox: `@mail_kind`), and the
functions that write them where the change happens.

`tracking`: the tracking code and the confirmation key, for residents who report through an integrator (Open311)
or leave an address on the site. Open311 never shows either (docs/open311.md), so without this a resident who
reported through a city app could not confirm or deny the department's answer. This mail goes to the complaint's
own address only: it is the one message that carries the code and the key. Its outbox row is written in the
transaction that files the complaint (one INSERT); the code and the key are read when it is sent, never stored in
the outbox. No longer due (cancelled) once the complaint is hidden, or older than TRACKING_MAIL_MAX_AGE_DAYS (a
late code is no use).
"""
import datetime

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import formats, timezone, translation
from django.utils.translation import gettext, gettext_noop

from geo_ourcity.languages import content_language, translated

from .models import CLOSED_STATES, State
from .outbox import mail_kind, outbox_write
from .tracking import confirmation_key, redact

# In the outbox row's language (the language the resident reported in, complaints.Complaint.language, else the
# city's default, LANGUAGE_CODE; the Russian text is in locale/ru), English where that language has no translation.
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


TRACKING = "tracking"


def tracking_mail_write(complaint):
    """In the transaction that files `complaint` (which has an address): its tracking mail, in the outbox."""
    outbox_write(kind=TRACKING, recipient=complaint.email, dedupe_key=f"{TRACKING}:{complaint.pk}",
                 complaint=complaint, language=complaint.language)


@mail_kind(TRACKING)
def tracking_mail_render(entry):
    complaint = entry.complaint
    if complaint is None or complaint.state == State.HIDDEN or not complaint.email:
        return None
    since = timezone.now() - datetime.timedelta(days=settings.TRACKING_MAIL_MAX_AGE_DAYS)
    if entry.context.get("key_only"):  # mailed before there were keys: while the resident may still confirm
        return None if complaint.state in CLOSED_STATES else tracking_mail_message(complaint, entry.language)
    if complaint.submitted_at < since:
        return None
    return tracking_mail_message(complaint, entry.language)


def tracking_mail_message(complaint, language=None):
    """The tracking mail in `language` (the outbox row's; default the city's, LANGUAGE_CODE)."""
    url = f"{settings.SITE_URL}/c/{complaint.tracking_code}/"
    with translation.override(language or settings.LANGUAGE_CODE):
        deadline = (formats.date_format(timezone.localtime(complaint.deadline), "SHORT_DATETIME_FORMAT")
                    if complaint.deadline else "—")
        category = translated(complaint.category.name_i18n) or complaint.category.code
        values = {"number": complaint.pk, "category": category, "department": complaint.department.display_name,
                  "deadline": deadline, "code": complaint.tracking_code, "key": confirmation_key(complaint),
                  "url": url}
        subject, body = gettext(SUBJECT) % values, gettext(BODY) % values
    return EmailMessage(subject=subject, body=body, to=[complaint.email])


# --- issue 10: the reminder before the confirmation window ends (complaints.cycle.confirmations_remind) ----------
# To the complaint's own address only (the reporter's), with the link to its page. No longer due (cancelled) once
# the resident has answered, the complaint has moved on, or the window has ended.
CONFIRM_REMINDER = "confirm_reminder"
REMINDER_SUBJECT = gettext_noop("Is the problem of your report No. %(number)s fixed?")
REMINDER_BODY = gettext_noop("""Hello,

Your report No. %(number)s (%(category)s) was answered by %(department)s:

%(answer)s

Please say on its page whether the problem is fixed, or that it is not, by %(until)s: %(url)s
You need the confirmation key that came with the tracking code. If you say nothing, the report is closed then as
resolved without your confirmation.
""")


def confirm_reminder_key(complaint_id, confirm_until):
    """One reminder per complaint and confirmation window (a new answer opens a new window)."""
    return f"{CONFIRM_REMINDER}:{complaint_id}:{int(confirm_until.timestamp())}"


@mail_kind(CONFIRM_REMINDER)
def confirm_reminder_render(entry):
    complaint = entry.complaint
    if (complaint is None or not complaint.email or complaint.state != State.ANSWERED
            or complaint.confirm_until is None or complaint.confirm_until <= timezone.now()
            or entry.dedupe_key != confirm_reminder_key(complaint.pk, complaint.confirm_until)):
        return None
    answer = complaint.answers.published().order_by("-created_at", "-id").first()
    with translation.override(entry.language or settings.LANGUAGE_CODE):
        lang = content_language()
        category = translated(complaint.category.name_i18n, lang) or complaint.category.code
        values = {"number": complaint.pk, "category": category, "department": complaint.department.display_name,
                  "answer": redact(answer.text) if answer else "",
                  "until": formats.date_format(timezone.localtime(complaint.confirm_until), "SHORT_DATETIME_FORMAT"),
                  "url": f"{settings.SITE_URL}/c/{complaint.tracking_code}/"}
        subject, body = gettext(REMINDER_SUBJECT) % values, gettext(REMINDER_BODY) % values
    return EmailMessage(subject=subject, body=body, to=[complaint.email])


from . import notify_mails  # noqa: E402,F401 - hearing back's kinds (event, follow, alerts, sign-in)
