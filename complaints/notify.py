"""Hearing back (issue 10 §1): residents are told of each public change of a complaint, follow complaints, support
them, get area alerts, and sign in by a link. Every mail goes through the outbox (complaints.outbox); the renderers
are in complaints.notify_mails.

**Event mails, from one place.** Every public ComplaintEvent, however it is written (a service's `_event`, the
one-statement create, a re-route's set-based INSERT, a scheduler's bulk pass of another module), is mailed by ONE
statement-level trigger on the history table (`complaints_event_mails`, created by migration
0010_hearing_back): for the rows that one INSERT added, one INSERT ... SELECT puts an outbox row of kind `event`
per event and address (the reporter's, if they gave one, and each active follower's; once per address, in its
language; never to an address that unsubscribed from the complaint), in the writing transaction. A re-route moving
thousands is one INSERT of events and one of mails. Events are not mailed when they are the filing itself
(`created`, and the first routing, which the tracking mail already tells the reporter): so the fast create path
(complaints.services._insert_sql) costs no round trip more. A new event kind is mailed with no more code: its
renderer falls back to a generic text.

Those rows are sent by the worker: changes made through complaints.services ask the queue for their complaint's
mails once their transaction commits (`event_mails_wake`); anything else is sent by the outbox sweep within
OUTBOX_SWEEP_EVERY seconds.

**Signed links.** Confirming a follow or an alert and unsubscribing are links signed under SECRET_KEY
(django.core.signing, one salt per purpose): a changed link is refused, a replayed one does nothing more. The
sign-in link is single use and expires (SignInLink).
"""
import datetime
import functools
import hmac
import secrets

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from .errors import ComplaintError
from .models import Alert, Complaint, Follow, SignInLink, State, Subscription, Support
from .outbox import outbox_write

EVENT = "event"
FOLLOW_CONFIRM = "follow-confirm"
ALERT_CONFIRM = "alert-confirm"
ALERT = "alert"
ALERT_DIGEST = "alert-digest"
SIGNIN = "signin"

_FOLLOW_SALT = "complaints.notify.follow"
_ALERT_SALT = "complaints.notify.alert"
_UNSUBSCRIBE_SALT = "complaints.notify.unsubscribe"
CONFIRM_MAX_AGE = 7 * 86400  # seconds a confirmation link works
EMAIL_MAX = 254


class LinkInvalid(ComplaintError):
    """A signed link that was changed, has expired or was used up."""


# --- addresses ------------------------------------------------------------------------------------------

def normal_email(raw):
    """A resident's address for follows, alerts and sign-in: trimmed, one line, valid, in lower case; else a
    ComplaintError (field "email"). What it returns can go into a mail header as it is."""
    value = str(raw or "").strip()
    if not value or len(value) > EMAIL_MAX or any(ch in value for ch in "\r\n\x00,;<>\"") or not value.isprintable():
        raise ComplaintError(_("Enter a valid e-mail address."), field="email")
    try:
        validate_email(value)
    except ValidationError:
        raise ComplaintError(_("Enter a valid e-mail address."), field="email") from None
    return value.lower()


def address_key(email):
    """What the per-address rate limits count (a keyed hash: the limit's cache keys hold no address)."""
    return salted_hmac("complaints.notify.address", email.lower(), algorithm="sha256").hexdigest()[:32]


def _language(language):
    return (language or settings.LANGUAGE_CODE)[:16]


# --- event mails: the queue is told once the change commits ---------------------------------------------

def event_mails_wake(complaint_id):
    """After the caller's transaction commits, a worker sends the complaint's due mails (those the history trigger
    wrote). Once per complaint and transaction; a lost wake-up is made good by the outbox sweep."""
    conn = transaction.get_connection()
    pending = getattr(conn, "complaints_mail_wake", None)
    if pending is not None and any(func is _wake_after_commit for _sp, func, _robust in conn.run_on_commit):
        pending.add(int(complaint_id))
        return
    conn.complaints_mail_wake = {int(complaint_id)}
    transaction.on_commit(_wake_after_commit, robust=True)  # outside a transaction: at once


def _wake_after_commit():
    from .tasks import outbox_deliver_for

    conn = transaction.get_connection()
    ids, conn.complaints_mail_wake = sorted(getattr(conn, "complaints_mail_wake", ()) or ()), None
    if ids:
        outbox_deliver_for.delay(ids)


# --- following a complaint ------------------------------------------------------------------------------

def follow_request(*, complaint, email, language=""):
    """Ask to follow `complaint` by e-mail: a pending follow and a confirmation mail (double opt-in), at most one
    such mail per follow a day. The same answer whether the address already follows or not (nothing to learn)."""
    email = normal_email(email)
    if complaint.state == State.HIDDEN:
        raise ComplaintError(_("The complaint does not exist."), field="complaint")
    with transaction.atomic():
        follow, _created = Follow.objects.select_for_update().get_or_create(
            complaint=complaint, email=email, defaults={"language": _language(language)})
        if follow.state == Subscription.ACTIVE:
            return follow
        if follow.state == Subscription.STOPPED:  # following again after an unsubscription: confirm again
            Follow.objects.filter(pk=follow.pk).update(state=Subscription.PENDING, language=_language(language))
            follow.state = Subscription.PENDING
        outbox_write(kind=FOLLOW_CONFIRM, recipient=email, complaint=complaint, language=_language(language),
                     dedupe_key=f"{FOLLOW_CONFIRM}:{follow.pk}:{timezone.localdate():%Y%m%d}",
                     context={"follow": follow.pk})
    return follow


def follow_token(follow):
    return signing.dumps(follow.pk, salt=_FOLLOW_SALT, compress=False)


def follow_confirm(token):
    """A follow's confirmation link: the follow becomes active (again: nothing changes)."""
    try:
        pk = signing.loads(token, salt=_FOLLOW_SALT, max_age=CONFIRM_MAX_AGE)
    except (signing.BadSignature, ValueError, TypeError):
        raise LinkInvalid(_("This link is not valid or has expired.")) from None
    follow = Follow.objects.select_related("complaint").filter(pk=pk).first() if isinstance(pk, int) else None
    if follow is None:
        raise LinkInvalid(_("This link is not valid or has expired."))
    Follow.objects.filter(pk=pk, state=Subscription.PENDING).update(state=Subscription.ACTIVE,
                                                                   confirmed_at=timezone.now())
    follow.refresh_from_db()
    return follow


def followers_count(complaint):
    return Follow.objects.filter(complaint=complaint, state=Subscription.ACTIVE).count()


def followers_take_over(*, duplicate, original):
    """A duplicate's reporter and active followers become the original's followers (one INSERT ... SELECT), in the
    caller's transaction; an address that unsubscribed from the original stays unsubscribed. They are told by the
    duplicate's own event mail, which names and links the original."""
    with connection.cursor() as cur:
        cur.execute("""
            INSERT INTO complaints_follow (complaint_id, email, language, state, source, created_at, confirmed_at)
            SELECT DISTINCT ON (x.email) %(original)s, x.email, x.language, 'active', 'duplicate', now(), now()
            FROM (SELECT lower(c.email) AS email, c.language, 0 AS rank FROM complaints_complaint c
                  WHERE c.id = %(duplicate)s AND c.email <> ''
                  UNION ALL
                  SELECT f.email, f.language, 1 FROM complaints_follow f
                  WHERE f.complaint_id = %(duplicate)s AND f.state = 'active') x
            WHERE NOT EXISTS (SELECT 1 FROM complaints_follow s WHERE s.complaint_id = %(duplicate)s
                              AND s.email = x.email AND s.state = 'stopped')
            ORDER BY x.email, x.rank
            ON CONFLICT (complaint_id, email) DO UPDATE SET state = 'active', confirmed_at = now()
              WHERE complaints_follow.state = 'pending'""", {"original": original.pk, "duplicate": duplicate.pk})


# --- unsubscribing ----------------------------------------------------------------------------------------

def unsubscribe_token(*, complaint_id=None, alert_id=None, email=""):
    """The signed unsubscribe link of an address from a complaint's mails, or of an alert."""
    value = ["a", alert_id] if alert_id is not None else ["c", complaint_id, email.lower()]
    return signing.dumps(value, salt=_UNSUBSCRIBE_SALT, compress=False)


def unsubscribe(token):
    """Stop what the signed link names: ("complaint", id) or ("alert", id). Idempotent."""
    try:
        value = signing.loads(token, salt=_UNSUBSCRIBE_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        raise LinkInvalid(_("This link is not valid or has expired.")) from None
    if isinstance(value, list) and len(value) == 2 and value[0] == "a" and isinstance(value[1], int):
        Alert.objects.filter(pk=value[1]).update(state=Subscription.STOPPED)
        return "alert", value[1]
    if (isinstance(value, list) and len(value) == 3 and value[0] == "c" and isinstance(value[1], int)
            and isinstance(value[2], str)):
        _kind, complaint_id, email = value
        if Complaint.objects.filter(pk=complaint_id).exists():
            with transaction.atomic():
                Follow.objects.bulk_create(
                    [Follow(complaint_id=complaint_id, email=email, state=Subscription.STOPPED,
                            source=Follow.Source.REPORTER)],
                    update_conflicts=True, unique_fields=["complaint", "email"], update_fields=["state"])
        return "complaint", complaint_id
    raise LinkInvalid(_("This link is not valid or has expired."))


def is_unsubscribed(complaint_id, email):
    return Follow.objects.filter(complaint_id=complaint_id, email=email.lower(), state=Subscription.STOPPED).exists()


# --- support ("me too") ---------------------------------------------------------------------------------

def support_add(*, complaint, client):
    """One "me too" per client (a keyed hash of its address) and complaint; returns the public count."""
    if complaint.state == State.HIDDEN:
        raise ComplaintError(_("The complaint does not exist."), field="complaint")
    digest = salted_hmac("complaints.notify.support", str(client), algorithm="sha256").hexdigest()[:64]
    Support.objects.bulk_create([Support(complaint=complaint, client=digest)], ignore_conflicts=True)
    return support_count(complaint)


def support_count(complaint):
    return Support.objects.filter(complaint=complaint).count()


# --- area alerts --------------------------------------------------------------------------------------------

ALERT_RADIUS_MAX = 5000  # metres


def alert_request(*, email, language="", frequency=Alert.Frequency.IMMEDIATE, area=None, point=None,
                  radius_m=None, group=""):
    """Ask for an area alert: pending until its address confirms it by the mailed link."""
    email = normal_email(email)
    if frequency not in Alert.Frequency.values:
        raise ComplaintError(_("Choose how often to be mailed."), field="frequency")
    given = [area is not None, point is not None, bool(group)]
    if sum(given) != 1:
        raise ComplaintError(_("Choose one: a district, a point with a radius, or a category group."), field="area")
    if point is not None:
        if radius_m is None or not (50 <= int(radius_m) <= ALERT_RADIUS_MAX):
            raise ComplaintError(_("The radius must be between 50 and %(max)d m.") % {"max": ALERT_RADIUS_MAX},
                                 field="radius_m")
    else:
        radius_m = None
    with transaction.atomic():
        alert = Alert.objects.create(email=email, language=_language(language), frequency=frequency, area=area,
                                     point=point, radius_m=radius_m, group=group or "")
        outbox_write(kind=ALERT_CONFIRM, recipient=email, language=alert.language,
                     dedupe_key=f"{ALERT_CONFIRM}:{alert.pk}", context={"alert": alert.pk})
    return alert


def alert_token(alert):
    return signing.dumps(alert.pk, salt=_ALERT_SALT, compress=False)


def alert_confirm(token):
    try:
        pk = signing.loads(token, salt=_ALERT_SALT, max_age=CONFIRM_MAX_AGE)
    except (signing.BadSignature, ValueError, TypeError):
        raise LinkInvalid(_("This link is not valid or has expired.")) from None
    if not isinstance(pk, int) or not Alert.objects.filter(pk=pk).exists():
        raise LinkInvalid(_("This link is not valid or has expired."))
    # From now on: the complaints filed before the confirmation are not news.
    latest = Complaint.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    Alert.objects.filter(pk=pk, state=Subscription.PENDING).update(state=Subscription.ACTIVE,
                                                                 confirmed_at=timezone.now(), seen_up_to=latest)
    return Alert.objects.get(pk=pk)


# The one rule of "this complaint is news for this alert", for both the immediate sweep and the digest.
ALERT_MATCH_SQL = """
    c.state <> 'hidden' AND (
        (a.area_id IS NOT NULL AND c.area_id IN (SELECT ar.id FROM facilities_adminarea ar
                                                 WHERE ar.id = a.area_id OR ar.parent_id = a.area_id))
     OR (a.point IS NOT NULL AND ST_DWithin(c.location::geography, a.point::geography, a.radius_m))
     OR (a.group <> '' AND EXISTS (SELECT 1 FROM routing_category k WHERE k.id = c.category_id
                                   AND a.group IN (SELECT t.value FROM jsonb_each_text(k.group_i18n) t))))"""

ALERTS_SWEEP_SQL = f"""
    WITH due AS (
        SELECT a.* FROM complaints_alert a WHERE a.state = 'active' FOR UPDATE SKIP LOCKED),
    top AS (SELECT coalesce(max(id), 0) AS id FROM complaints_complaint),
    mails AS (
        INSERT INTO complaints_outbox (kind, recipient, language, context, dedupe_key, complaint_id, state, attempts,
                                       last_error, created_at, next_attempt_at)
        SELECT %(kind)s, a.email, a.language, jsonb_build_object('alert', a.id), 'alert:' || a.id || ':' || c.id,
               c.id, 'pending', 0, '', now(), now()
        FROM due a JOIN complaints_complaint c ON c.id > a.seen_up_to AND c.id <= (SELECT id FROM top)
        WHERE a.frequency = 'immediate' AND {ALERT_MATCH_SQL}
        ON CONFLICT (dedupe_key) DO NOTHING RETURNING 1),
    moved AS (
        UPDATE complaints_alert a SET seen_up_to = (SELECT id FROM top)
        FROM due WHERE a.id = due.id AND due.frequency = 'immediate' RETURNING 1)
    SELECT (SELECT count(*) FROM mails), (SELECT count(*) FROM moved)"""

DIGEST_SQL = f"""
    WITH due AS (
        SELECT a.* FROM complaints_alert a
        WHERE a.state = 'active' AND a.frequency = 'daily' FOR UPDATE SKIP LOCKED),
    top AS (SELECT coalesce(max(id), 0) AS id FROM complaints_complaint),
    news AS (
        SELECT a.id AS alert_id, array_agg(c.id ORDER BY c.id) AS ids FROM due a
        JOIN complaints_complaint c ON c.id > a.seen_up_to AND c.id <= (SELECT id FROM top)
        WHERE {ALERT_MATCH_SQL} GROUP BY a.id),
    mails AS (
        INSERT INTO complaints_outbox (kind, recipient, language, context, dedupe_key, state, attempts, last_error,
                                       created_at, next_attempt_at)
        SELECT %(kind)s, a.email, a.language,
               jsonb_build_object('alert', a.id, 'complaints', to_jsonb(n.ids[1:%(max)s]),
                                  'total', cardinality(n.ids)),
               'digest:' || a.id || ':' || a.seen_up_to || ':' || (SELECT id FROM top), 'pending', 0, '', now(), now()
        FROM due a JOIN news n ON n.alert_id = a.id
        ON CONFLICT (dedupe_key) DO NOTHING RETURNING 1),
    moved AS (UPDATE complaints_alert a SET seen_up_to = (SELECT id FROM top) FROM due WHERE a.id = due.id
              RETURNING 1)
    SELECT (SELECT count(*) FROM mails), (SELECT count(*) FROM moved)"""

DIGEST_MAX = 50  # complaints listed in one digest (the count says how many there were)


def alerts_sweep():
    """The immediate alerts: one mail per new matching complaint, in one statement for every alert; returns how
    many mails were written. The queue sends them once this commits."""
    return _alerts_pass(ALERTS_SWEEP_SQL, ALERT)


def alerts_digest():
    """The daily digests: one mail per alert that has news since its last digest."""
    return _alerts_pass(DIGEST_SQL, ALERT_DIGEST)


def _alerts_pass(sql, kind):
    from .tasks import outbox_sweep

    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(sql, {"kind": kind, "max": DIGEST_MAX})
            written, _moved = cur.fetchone()
        if written:
            transaction.on_commit(lambda: outbox_sweep.delay(), robust=True)
    return written


# --- residents' sign-in by a link ---------------------------------------------------------------------------

SIGNIN_MAX_AGE = datetime.timedelta(minutes=30)


def signin_request(*, email, language=""):
    """Mail a sign-in link to `email` (whoever holds the address is its resident: no account to look up, so the
    answer and the work are the same for every address)."""
    email = normal_email(email)
    with transaction.atomic():
        link = SignInLink.objects.create(email=email, secret=secrets.token_hex(32),
                                         expires_at=timezone.now() + SIGNIN_MAX_AGE)
        outbox_write(kind=SIGNIN, recipient=email, language=_language(language), dedupe_key=f"{SIGNIN}:{link.pk}",
                     context={"link": link.pk})
    return link


def _signin_mac(link, key):
    return salted_hmac("complaints.notify.signin", f"{link.pk}:{link.secret}", secret=key,
                       algorithm="sha256").hexdigest()[:40]


def signin_token(link):
    return f"{link.pk}-{_signin_mac(link, settings.SECRET_KEY)}"


def _signin_link(token):
    pk, _sep, mac = str(token or "").partition("-")
    link = SignInLink.objects.filter(pk=int(pk)).first() if pk.isdigit() and len(pk) < 19 else None
    if link is None or not mac:
        return None
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if not functools.reduce(lambda ok, k: hmac.compare_digest(_signin_mac(link, k), mac) or ok, keys, False):
        return None
    return link


def signin_check(token):
    """The address a sign-in link is for, if it is valid, unused and unexpired (does not use it up)."""
    link = _signin_link(token)
    if link is None or link.used_at is not None or link.expires_at <= timezone.now():
        raise LinkInvalid(_("This sign-in link is not valid, has expired or was used already. Ask for a new one."))
    return link.email


def signin_use(token):
    """Use the sign-in link up (once: a second use, even at the same moment, is refused); its address."""
    link = _signin_link(token)
    used = link is not None and SignInLink.objects.filter(
        pk=link.pk, used_at__isnull=True, expires_at__gt=timezone.now()).update(used_at=timezone.now())
    if not used:
        raise LinkInvalid(_("This sign-in link is not valid, has expired or was used already. Ask for a new one."))
    return link.email


# --- what a signed-in resident sees -------------------------------------------------------------------------

def resident_complaints(email):
    """The complaints filed with this address (not hidden), newest first."""
    return (Complaint.objects.filter(email__iexact=email).exclude(state=State.HIDDEN)
            .select_related("category", "department__authority").order_by("-submitted_at"))


def resident_follows(email):
    return (Follow.objects.filter(email=email.lower(), state=Subscription.ACTIVE)
            .exclude(complaint__state=State.HIDDEN).select_related("complaint__category").order_by("-created_at"))


def resident_alerts(email):
    return Alert.objects.filter(email=email.lower(), state=Subscription.ACTIVE).select_related("area")


def supports_counts(complaint_ids):
    return dict(Support.objects.filter(complaint_id__in=complaint_ids).values_list("complaint_id")
                .annotate(n=Count("id")).values_list("complaint_id", "n"))

