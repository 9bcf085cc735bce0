"""The mail outbox: every mail the service sends goes through here (DESIGN.md; models.Outbox).

    outbox_write(kind=..., recipient=..., dedupe_key=..., ...)   in the transaction that causes the mail
    outbox_send(entry_id)                                        a worker: send one if it is due (row-locked)
    outbox_send_due(limit=...)                                   the scheduler's sweep and `manage.py send_mail`
    outbox_send_for(complaint_ids)                               a change's event mails, once it commits

Adding a kind of mail is one step: a renderer decorated with `@mail_kind("name")` that turns an Outbox row into an
EmailMessage (or None when the mail is no longer due: it is then cancelled, not sent), in a module its app imports
(complaints.mails holds this app's), and an `outbox_write(kind="name", ...)` where the change happens.

Fast as well as safe (bench/mail_latency_bench.py): a worker process keeps one SMTP connection open from mail to mail
(process_mailer(): checked with a NOOP after OUTBOX_SMTP_IDLE_CHECK seconds idle, reopened after any failure, never shared
with a forked child), the row is read, locked and joined to what its renderer reads in one statement, and the mail
tasks store no result. The guarantees stay those of outbox_send: one row lock and one transaction per mail.

The writing request puts nothing on the queue itself (a Celery publish cost an Open311 POST about 1 ms of its CPU,
bench/README.md): every worker runs a relay (outbox_relay, every OUTBOX_RELAY_EVERY seconds, started with the worker:
complaints.tasks) that claims the committed rows not yet handed over (`queued_at`, claimed with SKIP LOCKED, so two
workers never hand one row over twice) and queues one task per row (complaints.tasks.outbox_deliver); the sweep
every minute sends whatever is still due, so a task lost with the broker loses no mail. A failure is recorded
(attempts, last error) and tried again after a backoff (OUTBOX_RETRY_BACKOFF x 2^(attempts-1) seconds, at most
CELERY_TASK_RETRY_BACKOFF_MAX) up to OUTBOX_MAX_ATTEMPTS times; then the row is `failed`, shown in the admin,
where an administrator can send it again.
"""
import datetime
import os
import smtplib
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import get_connection
from django.db import connection, transaction
from django.utils import timezone, translation

from .models import Outbox

KINDS = {}


def mail_kind(name):
    """Register `render(entry) -> EmailMessage | None` as the renderer of the outbox kind `name`."""
    def register(render):
        if name in KINDS and KINDS[name] is not render:
            raise ValueError(f"outbox kind {name!r} is registered twice")
        KINDS[name] = render
        return render
    return register


def _kinds():
    from . import mails  # noqa: F401 - registers this app's kinds

    return KINDS


def outbox_write(*, kind, recipient, dedupe_key, complaint=None, language="", context=None):
    """Put a mail in the outbox: one INSERT (nothing if a row with this `dedupe_key` exists), in the caller's
    transaction; a worker's relay queues it once that transaction has committed (outbox_relay). A rollback leaves
    no row and no task."""
    if kind not in _kinds():
        raise ValueError(f"unknown outbox kind {kind!r}")
    entry = Outbox(kind=kind, recipient=recipient, dedupe_key=dedupe_key[:200], complaint=complaint,
                   language=language or settings.LANGUAGE_CODE, context=context or {})
    Outbox.objects.bulk_create([entry], ignore_conflicts=True)  # INSERT ... ON CONFLICT DO NOTHING


def outbox_write_many(entries):
    """outbox_write for many mails at once (a scheduler's set-based pass): one INSERT for all of them (each row
    skipped whose `dedupe_key` exists), each row queued by the relay once the caller's transaction commits. `entries`:
    dicts of kind, recipient, dedupe_key and optionally complaint_id, language, context."""
    kinds = _kinds()
    rows = []
    for e in entries:
        if e["kind"] not in kinds:
            raise ValueError(f"unknown outbox kind {e['kind']!r}")
        rows.append(Outbox(kind=e["kind"], recipient=e["recipient"], dedupe_key=e["dedupe_key"][:200],
                           complaint_id=e.get("complaint_id"), language=e.get("language") or settings.LANGUAGE_CODE,
                           context=e.get("context") or {}))
    Outbox.objects.bulk_create(rows, ignore_conflicts=True)


# Claims the committed rows that no relay has handed over yet, oldest first; a row another relay is claiming at
# this moment is skipped (it is that relay's). Plain SQL: nothing prepared, so it holds behind a transaction-mode
# pooler (docs/database.md).
_RELAY_SQL = """
UPDATE complaints_outbox o SET queued_at = now()
FROM (SELECT id FROM complaints_outbox WHERE state = 'pending' AND queued_at IS NULL
      ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) c
WHERE o.id = c.id
RETURNING o.dedupe_key
"""


def outbox_relay(*, limit=500):
    """Hand the outbox rows written since the last pass to the queue: one outbox_deliver task per row, each row
    claimed (queued_at) by exactly one relay. Returns the keys queued. If the broker is down, the claim is undone
    (the next pass tries again); a task lost after that is the sweep's (outbox_sweep), as before."""
    from .tasks import outbox_deliver

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(_RELAY_SQL, [limit])
        keys = [row[0] for row in cur.fetchall()]
        # Published inside the claiming transaction: a broker failure raises here and rolls the claim back. A task
        # that reaches a worker before this commits finds the row as it was (the claim alters only queued_at).
        for key in keys:
            outbox_deliver.delay(key)
    return keys


def outbox_send_key(dedupe_key, *, mailer=None):
    """outbox_send for the row with this dedupe key ("not due" if there is none)."""
    entry_id = Outbox.objects.filter(dedupe_key=dedupe_key).values_list("pk", flat=True).first()
    return "not due" if entry_id is None else outbox_send(entry_id, mailer=mailer)


def retry_delay(attempts):
    """Seconds before the next try after `attempts` failed ones."""
    return min(settings.OUTBOX_RETRY_BACKOFF * 2 ** max(attempts - 1, 0), settings.CELERY_TASK_RETRY_BACKOFF_MAX)


def outbox_send(entry_id, *, mailer=None):
    """Send one outbox mail if it is due: "sent", "failed" (recorded, to be tried again or given up), "cancelled"
    (its renderer says it is no longer due), "busy" (another sender holds it now) or "not due" (sent, given up,
    cancelled, or its next try is later).

    Never twice: the row is locked (FOR UPDATE SKIP LOCKED) for the whole send and the outcome is written in that
    same transaction, so a second sender skips it and then finds it sent. A sender killed mid-send leaves the row
    as it was (its transaction rolls back) and the mail stays due. (A server that accepted the message just before
    the sender died may see it once more: SMTP has no way to say "once".)
    """
    with transaction.atomic():
        # One statement: the row, locked (itself only), with the complaint its renderers read.
        entry = (Outbox.objects.select_for_update(skip_locked=True, of=("self",))
                 .select_related("complaint__category", "complaint__department__authority")
                 .filter(pk=entry_id).first())
        if entry is None:
            return "busy" if Outbox.objects.filter(pk=entry_id).exists() else "not due"
        if entry.state != Outbox.State.PENDING or entry.next_attempt_at > timezone.now():
            return "not due"
        render = _kinds().get(entry.kind)
        with translation.override(entry.language or settings.LANGUAGE_CODE):
            message = render(entry) if render else None
        if message is None:
            entry.state, entry.last_error = Outbox.State.CANCELLED, "" if render else f"unknown kind {entry.kind!r}"
            entry.save(update_fields=["state", "last_error"])
            return "cancelled"
        error = _send(mailer or process_mailer(), message)
        entry.attempts += 1
        now = timezone.now()
        if error is None:
            entry.state, entry.sent_at, entry.last_error = Outbox.State.SENT, now, ""
        else:
            entry.last_error = error
            if entry.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
                entry.state = Outbox.State.FAILED
            else:
                entry.next_attempt_at = now + datetime.timedelta(seconds=retry_delay(entry.attempts))
        entry.save(update_fields=["state", "sent_at", "last_error", "attempts", "next_attempt_at"])
        return "sent" if error is None else "failed"


@dataclass
class SendRun:
    sent: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped_busy: int = 0  # held by another sender at that moment (it sends them)
    failed_ids: list = field(default_factory=list)  # the rows whose send failed (each to be tried again)


def outbox_due_ids(*, limit=500):
    """The outbox mails due now, the longest waiting first."""
    due = Outbox.objects.filter(state=Outbox.State.PENDING, next_attempt_at__lte=timezone.now())
    return list(due.order_by("next_attempt_at", "id").values_list("pk", flat=True)[:limit])


def _send_each(entry_ids) -> "SendRun":
    run = SendRun()
    for entry_id in entry_ids:
        outcome = outbox_send(entry_id)
        run.sent += outcome == "sent"
        run.failed += outcome == "failed"
        if outcome == "failed":
            run.failed_ids.append(entry_id)
        run.cancelled += outcome == "cancelled"
        run.skipped_busy += outcome == "busy"
    return run


def outbox_send_due(*, limit=500) -> SendRun:
    """Send every outbox mail that is due (at most `limit`), one by one through outbox_send, on one SMTP connection:
    the scheduler's sweep and `manage.py send_mail`, whatever happened to each mail's own task. Two senders at once
    share the work."""
    return _send_each(outbox_due_ids(limit=limit))


# A change's event mails, claimed as the relay claims rows (queued_at, SKIP LOCKED): each row is handed to exactly
# one of the change's own task and the relay, so under a backlog a mail is not queued twice (the second task was a
# wasted locked read per mail while the worker fell behind: bench/README.md, mail latency).
_CLAIM_FOR_SQL = """
UPDATE complaints_outbox o SET queued_at = now()
FROM (SELECT id FROM complaints_outbox WHERE complaint_id = ANY(%s) AND state = 'pending' AND queued_at IS NULL
      AND next_attempt_at <= now() ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) c
WHERE o.id = c.id
RETURNING o.id
"""


def outbox_send_for(complaint_ids, *, limit=500) -> SendRun:
    """Send the due mails of these complaints that no relay has handed over yet (a change's event mails,
    complaints.tasks.outbox_deliver_for): claimed first, then sent one by one through outbox_send. A row the relay
    claimed first is its task's; one this claims and fails to send (a worker killed after the claim) is sent by
    the sweep."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(_CLAIM_FOR_SQL, [[int(i) for i in complaint_ids], limit])
        ids = sorted(row[0] for row in cur.fetchall())
    return _send_each(ids)


def outbox_retry(*, entries):
    """An administrator's "send again": failed (or cancelled) mails become pending with a fresh count of attempts,
    and the relay queues them once this commits. Returns how many."""
    ids = [e.pk for e in entries if e.state in (Outbox.State.FAILED, Outbox.State.CANCELLED)]
    with transaction.atomic():
        n = Outbox.objects.filter(pk__in=ids).update(state=Outbox.State.PENDING, attempts=0,
                                                     next_attempt_at=timezone.now(), queued_at=None)
    return n


# --- the process's mail connection ---------------------------------------------------------------------------

_process = {"pid": None, "key": None, "mailer": None, "used": 0.0}


def _mail_settings_key():
    return (settings.EMAIL_BACKEND, getattr(settings, "EMAIL_HOST", ""), getattr(settings, "EMAIL_PORT", None),
            getattr(settings, "EMAIL_HOST_USER", ""), getattr(settings, "EMAIL_USE_TLS", False),
            getattr(settings, "EMAIL_USE_SSL", False), getattr(settings, "EMAIL_FILE_PATH", None))


def process_mailer():
    """This process's mail connection, opened once and kept from mail to mail (an SMTP session per mail costs the
    server's greeting, EHLO, STARTTLS and AUTH each time). After OUTBOX_SMTP_IDLE_CHECK seconds unused it is checked
    with a NOOP first (servers drop idle clients); one a forked child inherited is never used (its socket is the
    parent's); a change of the mail settings opens a new one. A failed send closes it (_send), so the next mail
    opens a fresh one. Nothing is ever sent twice for it: a mail is sent once on whatever connection this returns,
    and a failure is recorded and retried with its backoff, as before."""
    key, pid, now = _mail_settings_key(), os.getpid(), time.monotonic()
    mailer = _process["mailer"]
    if mailer is not None and (_process["pid"] != pid or _process["key"] != key):
        if _process["pid"] == pid:
            _close_quietly(mailer)
        mailer = None  # a parent's connection is left to the parent
    if mailer is not None and now - _process["used"] > settings.OUTBOX_SMTP_IDLE_CHECK and not _alive(mailer):
        _close_quietly(mailer)
        mailer = None
    if mailer is None:
        mailer = get_connection(fail_silently=False)
    _process.update(pid=pid, key=key, mailer=mailer, used=now)
    return mailer


def process_mailer_close():
    """Close this process's mail connection (a worker's shutdown; tests)."""
    mailer, _process["mailer"] = _process["mailer"], None
    if mailer is not None and _process["pid"] == os.getpid():
        _close_quietly(mailer)


def _alive(mailer):
    smtp = getattr(mailer, "connection", None)
    if not isinstance(smtp, smtplib.SMTP):
        return True  # not an SMTP session (files, memory): nothing to go stale
    try:
        return smtp.noop()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


def _close_quietly(mailer):
    try:
        mailer.close()
    except Exception:  # noqa: BLE001 - a dead connection may fail to say goodbye
        pass


def _send(mailer, message):
    """None if the message went, else what went wrong (one line). After a failure the connection is closed: the
    next mail (or try) opens a fresh one."""
    try:
        mailer.open()  # no-op when open
        message.connection = mailer
        message.send()
    except Exception as exc:  # noqa: BLE001 - any failure of the mail server is recorded and tried again later
        _close_quietly(mailer)
        return f"{exc.__class__.__name__}: {exc}"[:1000]
    return None
