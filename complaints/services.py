"""Writes of the complaint lifecycle. Every change runs in one transaction with the complaint's row locked
(select_for_update), checks the state machine (complaints.transitions) on the locked row, and appends one
ComplaintEvent. So two staff acting at once are serialised: the second sees the first's result and either
proceeds validly or gets TransitionNotAllowed; no change is lost.

Validate, then act: input that needs no lock (text, attributes, photos) is checked before the transaction.
"""
import contextlib
import contextvars
import dataclasses
import datetime
import functools
import re
import time
import uuid
from collections import Counter

from django.contrib.gis.geos import Point
from django.db import DEFAULT_DB_ALIAS, IntegrityError, OperationalError, connection, connections, transaction
from django.db.models.signals import post_save, pre_save
from django.utils import translation
from django.utils.translation import gettext as _

from facilities.models import Department
from routing.deadlines import HOLIDAYS_VERSION_SQL, due_date, due_date_fresh
from routing.engine import ENGINE_VERSION, OutsideCity, route
from routing.models import RoutingDecision
from routing.services import reroute_plan, reroute_plan_drop

from . import clock
from .errors import (ComplaintError, ComplaintInvalid, ComplaintNotFound, ComplaintPermissionDenied, Faults,
                     OutsideCityError, TransitionNotAllowed)
from .mails import tracking_mail_write
from .models import OPEN_STATES, Answer, Complaint, ComplaintEvent, Photo, State, Volunteer, VolunteerCheck
from .notify import event_mails_wake, followers_take_over
from .photos import clean_photo, clean_photos
from .selectors import is_moderator, user_may_act
from .tracking import confirmation_key, confirmation_key_matches, new_tracking_code, normalize_tracking_code
from .transitions import check_transition
from .validation import (DESCRIPTION_MAX, clean_attributes, clean_contact, clean_facility, clean_location,
                         clean_media_url,
                         clean_text)

__all__ = [
    "ComplaintError", "ComplaintInvalid", "TransitionNotAllowed", "ComplaintPermissionDenied", "ComplaintNotFound",
    "OutsideCityError", "complaint_create", "complaint_check", "complaint_take", "complaint_answer",
    "complaint_transfer", "complaint_recategorise", "complaint_mark_duplicate", "complaint_hide", "complaint_confirm",
    "complaint_deny", "complaints_reroute", "complaint_answer_publish", "complaint_answer_return",
    "complaint_volunteer_check", "answer_needs_moderation", "complaints_batch",
]

REASON_MAX = 1000
RESIDENT = "resident"
MANUAL_ENGINE_VERSION = "manual"  # engine_version of decisions that a person made
CODE_ATTEMPTS = 3  # tries at a complaint's tracking code and token


# --- a batch of lifecycle writes (the demo city's year of history) ---------------------------------------------
# Inside `with complaints_batch():` the lifecycle services (take, answer, transfer, confirm, deny) run exactly as
# they do one by one - the same state machine, permission check, deadlines, moderation rule, confirmation window and
# events - on the batch's copies of its complaints, and their writes are kept: when the block ends they are written
# in ONE transaction (the complaints locked and checked unchanged since the batch first read them; the decisions,
# answers and events inserted in bulk; the complaints updated in bulk; one mail wake for all). An error inside the
# block, or a complaint changed by someone else meanwhile, writes nothing of the batch. For writers that own the
# complaints they change (complaints/management/commands/load_demo_complaints.py); requests never use it.

_batch = contextvars.ContextVar("complaints_batch", default=None)


class _Batch:
    def __init__(self):
        self.held, self.read_state, self.by_code = {}, {}, {}
        self.dirty, self.added, self.events, self.wake, self.acts = {}, [], [], set(), {}

    def adopt(self, complaint):
        """A complaint the caller holds fresh (just created): the batch works on this very instance."""
        self.held[complaint.pk] = complaint
        self.read_state[complaint.pk] = complaint.state
        self.by_code[complaint.tracking_code] = complaint
        return complaint

    def complaint(self, complaint):
        if complaint.pk not in self.held:
            fresh = Complaint.objects.filter(pk=complaint.pk).select_related("category", "department__authority").first()
            if fresh is None:
                raise ComplaintNotFound(_("The complaint does not exist."))
            self.adopt(fresh)
        return self.held[complaint.pk]

    def holds(self, complaint):
        return self.held.get(complaint.pk) is complaint

    def may_act(self, user, department_id):
        key = (user.pk, department_id)
        if key not in self.acts:
            self.acts[key] = user_may_act(user, department_id)
        return self.acts[key]

    def write(self):
        """Write the batch (retried on a deadlock with another writer: the batch is still whole in memory)."""
        for attempt in range(3):
            try:
                return self._write()
            except OperationalError as exc:
                if getattr(exc.__cause__, "pgcode", None) != "40P01" or attempt == 2:
                    raise
                for obj in self.added + self.events:  # the rolled-back inserts gave them ids: take them back
                    obj.pk = None
                    obj._state.adding = True

    def _write(self):
        if not self.dirty:
            return
        with transaction.atomic():
            ids = sorted(self.dirty)
            now_states = dict(Complaint.objects.select_for_update().filter(pk__in=ids).values_list("pk", "state"))
            changed = [pk for pk in ids if now_states.get(pk) != self.read_state[pk]]
            if changed:
                raise TransitionNotAllowed(_("A complaint changed while a batch of its history was written: "
                                             "nothing of the batch was written (#%(id)s).") % {"id": changed[0]})
            for model in (RoutingDecision, Answer):  # before what points at them
                rows = [obj for obj in self.added if isinstance(obj, model)]
                if rows:
                    model.objects.bulk_create(rows, batch_size=2000)
            ComplaintEvent.objects.bulk_create(self.events, batch_size=2000)
            # ONE statement for all the complaints (each row's own values; a field one did not change is written
            # as it is): the map's cell-count trigger then takes its locks once, in its one order.
            fields = sorted(set().union(*self.dirty.values()))
            Complaint.objects.bulk_update([self.held[pk] for pk in ids], fields, batch_size=len(ids))
            for pk in sorted(self.wake):
                event_mails_wake(pk)


@contextlib.contextmanager
def complaints_batch():
    """See above. Yields the batch: `batch.adopt(complaint)` hands it a complaint just created."""
    if _batch.get() is not None:
        raise RuntimeError("complaints_batch does not nest")
    batch = _Batch()
    token = _batch.set(batch)
    try:
        yield batch
    finally:
        _batch.reset(token)
    batch.write()


_UPDATED_AT = Complaint._meta.get_field("updated_at")


def _save(complaint, fields):
    """complaint.save(update_fields=fields), or, for a complaint a batch holds, kept for the batch's write."""
    batch = _batch.get()
    if batch is not None and batch.holds(complaint):
        if "updated_at" in fields:
            _UPDATED_AT.pre_save(complaint, False)  # what save() does for auto_now
        batch.dirty.setdefault(complaint.pk, set()).update(fields)
        return
    complaint.save(update_fields=fields)


def _add(obj):
    """obj.save() (a new row), or kept for the batch's write."""
    batch = _batch.get()
    if batch is not None:
        batch.added.append(obj)
    else:
        obj.save(force_insert=True)
    return obj


# --- creation -------------------------------------------------------------------------------------------

def complaint_create(*, category, point, description="", attributes=None, email="", phone="", first_name="",
                     last_name="", device_id="", account_id="", address_string="", facility=None, photos=(),
                     media_url="", source="web", actor=None):
    """Store a resident's complaint, routed and `assigned`, with its deadline, tracking code and token.

    The returned complaint carries `confirmation_key` (not stored: derived from its secret), for the resident's
    eyes only: the web shows it once after filing; the tracking mail sends it.

    The history gets `created` (-> new) and `routed` (new -> assigned). The event's actor is `actor` if given,
    else "resident" for the web and "api:<source>" for an integrator.
    """
    if not category.active:
        raise ComplaintError(_("This service is not available."), field="service_code")
    # Every input is checked before any is refused: the faults come back together (ComplaintInvalid).
    faults = Faults()
    lon, lat = faults.check(clean_location, point) or (None, None)
    if lon is not None:
        facility = faults.check(clean_facility, category, (lon, lat), facility)
    fields = {
        "description": faults.check(clean_text, description, field="description", limit=DESCRIPTION_MAX),
        "address_string": faults.check(clean_text, address_string, field="address_string", limit=500),
        "media_url": faults.check(clean_media_url, media_url),
        "attributes": faults.check(clean_attributes, category, attributes),
        **(faults.check(clean_contact, email=email, phone=phone, first_name=first_name, last_name=last_name,
                        device_id=device_id, account_id=account_id) or {}),
        "language": (translation.get_language() or "")[:16],  # the reporter's mails are in it (complaints.notify)
    }
    cleaned_photos = faults.check(clean_photos, photos)
    faults.raise_any()
    label = actor.get_username() if actor else (RESIDENT if source == "web" else f"api:{source}")

    location = Point(lon, lat, srid=4326)
    # A tracking code or token that clashes with a stored one (about 2^-59 per pair) fails the INSERT: then the
    # whole transaction runs again with new ones. (No savepoint around the INSERT: that would cost two more round
    # trips on every request for the sake of almost none.)
    for attempt in range(CODE_ATTEMPTS):
        try:
            with transaction.atomic():
                complaint = _create_routed(category=category, location=location, facility=facility,
                                           fields=fields, source=source, actor=actor, label=label,
                                           photos=cleaned_photos)
                if complaint.email:  # its tracking mail: an outbox row, sent by a worker once this commits
                    tracking_mail_write(complaint)
            complaint.confirmation_key = confirmation_key(complaint)
            return complaint
        except IntegrityError as exc:
            if attempt == CODE_ATTEMPTS - 1 or not _is_code_clash(exc):
                raise


def complaint_check(*, category, attributes=None, photos=()):
    """complaint_create's checks of the answers to the category's questions and of the photos, alone: for a form
    whose own fields failed, so that the resident hears of every fault at once (ComplaintInvalid). Stores nothing."""
    faults = Faults()
    faults.check(clean_attributes, category, attributes)
    faults.check(clean_photos, photos)
    faults.raise_any()


def _create_routed(*, category, location, facility, fields, source, actor, label, photos):
    """Route and store the complaint, already `assigned`, with its two history lines: one INSERT statement."""
    try:
        decision = route(location, category, facility=facility)
    except OutsideCity as exc:
        raise OutsideCityError(str(exc), field="location") from exc
    routed_state, routed_kind = check_transition(State.NEW, "route")
    now = clock.now()
    deadline, reused_under = due_date(now, category.deadline_days)
    complaint = Complaint(
        category=category, location=location, source=source, state=routed_state, submitted_at=now,
        deadline=deadline, tracking_code=new_tracking_code(), token=str(uuid.uuid4()),
        **fields, **_placement(decision))
    holidays_version = _insert_with_events(complaint, [
        _new_event(complaint, kind=ComplaintEvent.Kind.CREATED, actor=actor, label=label, to_state=State.NEW),
        _new_event(complaint, kind=routed_kind, actor=None, label="system:routing", from_state=State.NEW,
                   to_state=routed_state, reason=decision.explanation_ru, decision=decision,
                   to_department=decision.department),
    ])
    _recheck_deadline(complaint, now, category.deadline_days, reused_under, holidays_version)
    for photo in photos:
        _store_photo(complaint, photo)
    return complaint


def _insert_with_events(complaint, events):
    """complaint.save(force_insert=True), then ComplaintEvent.objects.bulk_create(events) for it: in ONE statement.

    The values are the ORM's own (each field's pre_save and get_db_prep_save), and the instances end up as the ORM
    leaves them (primary keys set, and the documented Model._state marked saved, as Model.from_db() does); only
    the building of the SQL, twice, and a round trip are saved. The ORM sends pre_save/post_save for the complaint
    (bulk_create sends none): if anyone listens, the ORM does it. Kept for speed, measured: the ORM's two inserts
    cost 1.1 to 1.5 ms more CPU per Open311 POST (bench/README.md, "Open311 HTTP").
    Returns the holidays' change stamp as that statement saw it (routing.deadlines).
    """
    if pre_save.has_listeners(Complaint) or post_save.has_listeners(Complaint):
        complaint.save(force_insert=True)
        ComplaintEvent.objects.bulk_create(events)
        with connection.cursor() as cur:
            cur.execute(f"SELECT {HOLIDAYS_VERSION_SQL}")
            return cur.fetchone()[0]
    db = connections[DEFAULT_DB_ALIAS]  # the connection itself, not the proxy: it is asked for many times
    _name, sql, complaint_fields, event_fields = _insert_sql(len(events))
    params = [f.get_db_prep_save(f.pre_save(complaint, True), db) for f in complaint_fields]
    for event in events:
        params += [f.get_db_prep_save(f.pre_save(event, True), db) for f in event_fields]
    with db.cursor() as cur:
        # A plain parameterised statement: nothing prepared on the connection, so it holds behind a transaction-mode
        # pooler (docs/database.md).
        cur.execute(sql, params)
        rows = cur.fetchall()
    complaint.pk = rows[0][1]
    complaint._state.adding, complaint._state.db = False, db.alias
    for event, (event_pk, _complaint_pk, _version) in zip(events, rows):
        event.pk, event.complaint = event_pk, complaint
        event._state.adding, event._state.db = False, db.alias
    return rows[0][2]


# Process-local memo: SQL built from the models, which never change while the process lives.
@functools.cache
def _insert_sql(n_events):
    """INSERT the complaint; INSERT its n events (in their order, so their ids are too) with the new complaint id."""
    quote = connection.ops.quote_name
    complaint_fields = [f for f in Complaint._meta.concrete_fields if not f.primary_key]
    event_fields = [f for f in ComplaintEvent._meta.concrete_fields
                    if not f.primary_key and f.attname != "complaint_id"]

    def placeholder(field):
        return field.get_placeholder(None, None, connection) if hasattr(field, "get_placeholder") else "%s"

    def cast(field):  # VALUES rows need their types; no length, so that a long value fails as in a plain INSERT
        return "%s::" + re.sub(r"\(\d+\)$", "", field.db_type(connection))

    event_columns = [quote(f.column) for f in event_fields]
    rows = ", ".join(f"({n}, {', '.join(cast(f) for f in event_fields)})" for n in range(n_events))
    sql = (f"WITH c AS (INSERT INTO {quote(Complaint._meta.db_table)} "
           f"({', '.join(quote(f.column) for f in complaint_fields)}) "
           f"VALUES ({', '.join(placeholder(f) for f in complaint_fields)}) RETURNING {quote('id')}) "
           f"INSERT INTO {quote(ComplaintEvent._meta.db_table)} ({quote('complaint_id')}, {', '.join(event_columns)}) "
           f"SELECT c.{quote('id')}, {', '.join('e.' + c for c in event_columns)} "
           f"FROM c CROSS JOIN (VALUES {rows}) e (n, {', '.join(event_columns)}) ORDER BY e.n "
           f"RETURNING {quote('id')}, {quote('complaint_id')}, {HOLIDAYS_VERSION_SQL}")
    return f"complaints_create_{n_events}", sql, complaint_fields, event_fields



def _is_code_clash(exc):
    """Is this IntegrityError a clash of a new complaint's tracking code or token with a stored one?"""
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
    if constraint is None:  # a database driver that does not say: assume it is (a retry is harmless)
        return True
    return constraint.startswith(Complaint._meta.db_table) and any(
        name in constraint for name in ("tracking_code", "token"))


# Deadlines: routing.deadlines keeps each due date with the holidays' change stamp; the statement that stores the
# complaint reads the stamp again (no extra round trip), and a due date reused under a stamp that has moved since (a
# holiday changed, in any process) is computed again and written before the transaction commits.
def _recheck_deadline(complaint, start, days, reused_under, current):
    """After the INSERT: a reused due date whose holidays' stamp is no longer `current` is computed again."""
    if reused_under is None or reused_under == current:
        return
    deadline = due_date_fresh(start, days)
    if deadline != complaint.deadline:
        complaint.deadline = deadline
        Complaint.objects.filter(pk=complaint.pk).update(deadline=deadline)


# --- department actions ---------------------------------------------------------------------------------

def complaint_take(*, complaint, user):
    """The department starts work on the complaint (-> in_progress)."""
    with transaction.atomic():
        complaint = _lock_for(user, complaint)
        _move(complaint, "take", actor=user)
        _save(complaint, ["state", "updated_at"])
    return complaint


def complaint_answer(*, complaint, user, text, photo=None):
    """The department's public answer, with an optional photo (-> answered; the resident confirms or denies).

    Where the city wants moderation (answer_needs_moderation: the category's or the department's authority's
    setting), the answer waits for a moderator instead (-> moderation, a staff-only event): the public sees it
    once it is published (complaint_answer_publish)."""
    text = _required_text(text, field="text", limit=DESCRIPTION_MAX)
    cleaned_photo = clean_photo(photo) if photo else None
    with transaction.atomic():
        complaint = _lock_for(user, complaint)
        if answer_needs_moderation(complaint):
            _move(complaint, "submit_answer", actor=user, reason=text, public=False)
            answer = _add(Answer(complaint=complaint, department=complaint.department, author=user,
                                 text=text, state=Answer.State.MODERATION))
            _save(complaint, ["state", "updated_at"])
        else:
            _move(complaint, "answer", actor=user, reason=text)
            answer = _add(Answer(complaint=complaint, department=complaint.department, author=user, text=text))
            _open_confirmation_window(complaint, clock.now())
            _save(complaint, ["state", "answered_at", "confirm_until", "confirm_reminded_at",
                                          "updated_at"])
        if cleaned_photo:
            _store_photo(complaint, cleaned_photo, answer=answer)
    return complaint


def complaint_transfer(*, complaint, user, reason, department=None):
    """Hand the complaint on, with a reason (-> transferred).

    To `department` if the staff member names one; otherwise the routing engine decides again, and if its answer
    is the department handing it on, the complaint goes to city triage.
    """
    reason = _required_text(reason, field="reason", limit=REASON_MAX)
    with transaction.atomic():
        complaint = _lock_for(user, complaint)
        check_transition(complaint.state, "transfer")  # before any routing work
        source = complaint.department
        if department is not None:
            if department.pk == source.pk:
                raise ComplaintError(_("The complaint is already with this department."), field="department")
            decision = _manual_decision(complaint, department, reason)
        else:
            decision = _reroute_away(complaint, reason)
        _move(complaint, "transfer", actor=user, reason=reason, decision=decision, from_department=source,
              to_department=decision.department)
        for name, value in _placement(decision, keep_facility=complaint.facility_id).items():
            setattr(complaint, name, value)
        _save(complaint, ["state", "decision", "department", "area", "facility", "updated_at"])
    return complaint


def complaint_recategorise(*, complaint, user, category, reason):
    """A member of staff changes the complaint's category (e.g. accepting the suggestion on the ticket list): a
    recorded change (event kind `category`, who, from which to which category and why) that routes it again
    for the new category, with its deadline counted from the filing by the new category's working days. If the
    department changes, the complaint goes on to it (`transferred`); otherwise its state stays.
    """
    reason = _required_text(reason, field="reason", limit=REASON_MAX)
    if not category.active:
        raise ComplaintError(_("This category is not in the catalogue any more."), field="category")
    with transaction.atomic():
        complaint = _lock_for(user, complaint)
        to_state, kind = check_transition(complaint.state, "recategorise")
        old = complaint.category
        if category.pk == old.pk:
            raise ComplaintError(_("The complaint already has this category."), field="category")
        try:
            decision = route(complaint.location, category)
        except OutsideCity:
            raise OutsideCityError(_("The complaint's point is outside the city.")) from None
        source = complaint.department
        moves = decision.department_id != source.pk
        from_state = complaint.state
        if moves:
            complaint.state = to_state
        else:  # no state change: not part of the state chain (as a re-route's event)
            from_state = to_state = ""
        _event(complaint, kind=kind, actor=user, from_state=from_state, to_state=to_state,
               from_department=source, to_department=decision.department, decision=decision,
               reason=f"{old.code} → {category.code}: {reason}")
        complaint.category = category
        complaint.deadline = due_date_fresh(complaint.submitted_at, category.deadline_days)
        for name, value in _placement(decision).items():
            setattr(complaint, name, value)
        complaint.save(update_fields=["state", "category", "deadline", "decision", "department", "area",
                                      "facility", "updated_at"])
    return complaint


def complaint_mark_duplicate(*, complaint, user, of):
    """Close the complaint as a duplicate of another one (pointing at the original if `of` is a duplicate)."""
    original_pk = _original_of(of.pk)
    if original_pk == complaint.pk:
        raise ComplaintError(_("A complaint can not be a duplicate of itself."), field="duplicate_of")
    with transaction.atomic():
        # Lock both rows, in id order (no deadlock), so that two opposite marks can not make a cycle.
        locked = {c.pk: c for c in Complaint.objects.select_for_update().filter(pk__in=[complaint.pk, original_pk])
                  .order_by("pk")}
        if len(locked) != 2:
            raise ComplaintNotFound(_("The complaint does not exist."))
        complaint, original = locked[complaint.pk], locked[original_pk]
        _authorise(user, complaint)
        if original.state in (State.DUPLICATE, State.HIDDEN):
            # It became a duplicate (or was hidden) since we looked: the caller should look again.
            raise TransitionNotAllowed(_("Complaint %(code)s can not be the original: it is %(state)s.")
                                       % {"code": f"№ {original.pk}", "state": State(original.state).label},
                                       field="duplicate_of")
        # The original's id, never its tracking code: the code is its resident's key and this line is public.
        _move(complaint, "mark_duplicate", actor=user, reason=f"#{original.pk}")
        complaint.duplicate_of = original
        complaint.save(update_fields=["state", "duplicate_of", "updated_at"])
        # Its reporter and followers follow the original from now on; its event mail (written with the event
        # above, complaints.notify) tells them so, with the original's link.
        followers_take_over(duplicate=complaint, original=original)
    return complaint


def complaint_hide(*, complaint, user, reason):
    """Moderation: hide the complaint from the public (the reason stays in the non-public history)."""
    reason = _required_text(reason, field="reason", limit=REASON_MAX)
    with transaction.atomic():
        complaint = _lock_for(user, complaint)
        _move(complaint, "hide", actor=user, reason=reason, public=False)
        _save(complaint, ["state", "updated_at"])
    return complaint


# --- resident actions -----------------------------------------------------------------------------------

# The tracking code names the complaint; the confirmation key (sent to its resident only) proves that it is its
# resident who confirms or denies. A wrong or missing key changes nothing.

def complaint_confirm(*, tracking_code, key):
    """The resident confirms the answer: the problem is solved (-> resolved)."""
    with transaction.atomic():
        complaint = _lock_by_code(tracking_code, key)
        _move(complaint, "confirm", actor=None, label=RESIDENT)
        complaint.resolved_at = clock.now()
        _save(complaint, ["state", "resolved_at", "updated_at"])
    return complaint


def complaint_deny(*, tracking_code, key, reason=""):
    """The resident denies the answer: back to the same department (-> reopened), counted."""
    reason = clean_text(reason, field="reason", limit=DESCRIPTION_MAX)
    with transaction.atomic():
        complaint = _lock_by_code(tracking_code, key)
        _move(complaint, "deny", actor=None, label=RESIDENT, reason=reason)
        complaint.reopen_count += 1
        _save(complaint, ["state", "reopen_count", "updated_at"])
    return complaint


# --- the answer cycle (issue 10): moderation, the confirmation window, volunteers' checks --------------------

def answer_needs_moderation(complaint):
    """The one rule of moderation: an answer waits for a moderator if the complaint's category or the authority of
    the department answering says so (both imported data: the catalogue's and the authorities' moderate_answers)."""
    return bool(complaint.category.moderate_answers or complaint.department.authority.moderate_answers)


def _open_confirmation_window(complaint, now):
    """The answer is public from `now`: the resident may confirm or dispute it for the category's confirm_days."""
    complaint.answered_at = now
    complaint.confirm_until = now + datetime.timedelta(days=complaint.category.confirm_days)
    complaint.confirm_reminded_at = None


def _lock_for_moderator(user, complaint):
    if not is_moderator(user):
        raise ComplaintPermissionDenied(_("Only moderators publish or return answers."))
    locked = Complaint.objects.select_for_update().filter(pk=complaint.pk).first()
    if locked is None:
        raise ComplaintNotFound(_("The complaint does not exist."))
    return locked


def _pending_answer(complaint):
    answer = (Answer.objects.select_for_update().filter(complaint=complaint, state=Answer.State.MODERATION)
              .order_by("-created_at", "-id").first())
    if answer is None:  # the state machine let it through, so this is a row written outside the services
        raise TransitionNotAllowed(_("This complaint has no answer waiting for moderation."))
    return answer


def complaint_answer_publish(*, complaint, user):
    """A moderator publishes the waiting answer (moderation -> answered): a public `answer` event with its text,
    and the confirmation window opens now. The deadline is not touched."""
    with transaction.atomic():
        complaint = _lock_for_moderator(user, complaint)
        check_transition(complaint.state, "publish")
        answer = _pending_answer(complaint)
        _move(complaint, "publish", actor=user, reason=answer.text)
        now = clock.now()
        answer.state, answer.moderated_by, answer.moderated_at = Answer.State.PUBLISHED, user, now
        answer.save(update_fields=["state", "moderated_by", "moderated_at"])
        _open_confirmation_window(complaint, now)
        complaint.save(update_fields=["state", "answered_at", "confirm_until", "confirm_reminded_at", "updated_at"])
    return complaint


def complaint_answer_return(*, complaint, user, reason):
    """A moderator returns the waiting answer to the department with a reason (moderation -> in_progress; a
    staff-only event). The deadline keeps running: it is not touched."""
    reason = _required_text(reason, field="reason", limit=REASON_MAX)
    with transaction.atomic():
        complaint = _lock_for_moderator(user, complaint)
        check_transition(complaint.state, "return_answer")
        answer = _pending_answer(complaint)
        _move(complaint, "return_answer", actor=user, reason=reason, public=False)
        answer.state, answer.moderated_by, answer.moderated_at = Answer.State.RETURNED, user, clock.now()
        answer.return_reason = reason
        answer.save(update_fields=["state", "moderated_by", "moderated_at", "return_reason"])
        _save(complaint, ["state", "updated_at"])
    return complaint


VOLUNTEER = "volunteer"  # the public history's actor of a check: never the volunteer's login


def complaint_volunteer_check(*, complaint_id, user, verdict, note="", photo=None):
    """A volunteer's on-site check of a complaint in their districts, recently answered or resolved
    (complaints.selectors.complaints_for_volunteer): `fixed` is recorded (a public `checked` event, the state
    stays); `not_fixed` reopens it to its department (-> reopened, counted as a reopening and, on the check,
    against that department). A complaint outside the volunteer's scope is ComplaintNotFound (a 404)."""
    from .selectors import complaints_for_volunteer

    if verdict not in VolunteerCheck.Verdict.values:
        raise ComplaintError(_("Say whether the problem is fixed."), field="verdict")
    note = clean_text(note, field="note", limit=DESCRIPTION_MAX)
    if verdict == VolunteerCheck.Verdict.NOT_FIXED and not note:
        raise ComplaintError(_("Say what is still wrong."), field="note")
    cleaned_photo = clean_photo(photo) if photo else None
    with transaction.atomic():
        volunteer = Volunteer.objects.filter(user=user, approved=True, user__is_active=True).first()
        locked = (complaints_for_volunteer(user).select_for_update(of=("self",)).filter(pk=complaint_id).first()
                  if volunteer is not None else None)
        if locked is None:
            raise ComplaintNotFound(_("The complaint does not exist."))
        failed = verdict == VolunteerCheck.Verdict.NOT_FIXED
        check = VolunteerCheck(complaint=locked, volunteer=volunteer, department=locked.department,
                               verdict=verdict, note=note)
        if cleaned_photo is not None:
            check.photo, check.photo_content_type = cleaned_photo, cleaned_photo.content_type
        if failed:
            _move(locked, "check_failed", actor=user, label=VOLUNTEER, reason=note)
            locked.reopen_count += 1
            locked.resolved_at, locked.resolved_unconfirmed, locked.confirm_until = None, False, None
            locked.save(update_fields=["state", "reopen_count", "resolved_at", "resolved_unconfirmed",
                                       "confirm_until", "updated_at"])
        else:
            _to, kind = check_transition(locked.state, "check")
            _event(locked, kind=kind, actor=user, label=VOLUNTEER, reason=note)
        check.save()
    return check


# --- helpers --------------------------------------------------------------------------------------------

def _lock_for(user, complaint):
    """The complaint's row, locked and fresh, if `user` may act on it (in a batch: the batch's copy)."""
    batch = _batch.get()
    if batch is not None:
        locked = batch.complaint(complaint)
        if not batch.may_act(user, locked.department_id):
            raise ComplaintPermissionDenied(_("You may act only on complaints of your own department."))
        return locked
    locked = Complaint.objects.select_for_update().filter(pk=complaint.pk).first()
    if locked is None:
        raise ComplaintNotFound(_("The complaint does not exist."))
    _authorise(user, locked)
    return locked


def _lock_by_code(tracking_code, key):
    """The complaint's row, locked, if `key` is its confirmation key (checked before its state: a wrong key learns
    nothing)."""
    code = normalize_tracking_code(tracking_code)
    batch = _batch.get()
    if batch is not None and code in batch.by_code:
        locked = batch.by_code[code]
    else:
        locked = Complaint.objects.select_for_update().filter(tracking_code=code).first() if code else None
    if locked is None:
        raise ComplaintNotFound(_("No complaint with this tracking code."))
    if not confirmation_key_matches(locked, key):
        raise ComplaintPermissionDenied(
            _("The confirmation key is missing or wrong. It was sent to you with the tracking code."), field="key")
    return locked


def _authorise(user, complaint):
    # Checked on the locked row: the complaint may have moved to another department meanwhile.
    if not user_may_act(user, complaint.department_id):
        raise ComplaintPermissionDenied(_("You may act only on complaints of your own department."))


def _move(complaint, action, *, actor, label=None, reason="", public=True, **event_fields):
    """Apply `action` to the (locked) complaint's state and append the event; the caller saves the complaint."""
    to_state, kind = check_transition(complaint.state, action)
    from_state, complaint.state = complaint.state, to_state
    _event(complaint, kind=kind, actor=actor, label=label, from_state=from_state, to_state=to_state,
           reason=reason, public=public, **event_fields)


def _event(complaint, *, kind, actor, label=None, **fields):
    event = _new_event(complaint, kind=kind, actor=actor, label=label, **fields)
    batch = _batch.get()
    if batch is not None:
        batch.events.append(event)
        if event.public:
            batch.wake.add(complaint.pk)
        return
    event.save(force_insert=True)  # a public event's mails are written by the history's trigger (complaints.notify)
    if event.public:
        event_mails_wake(complaint.pk)  # and sent by a worker once this commits


def _new_event(complaint, *, kind, actor, label=None, **fields):
    return ComplaintEvent(complaint=complaint, kind=kind, actor=actor, actor_label=label or actor.get_username(),
                          **fields)


def _placement(decision, keep_facility=None):
    """The complaint fields that follow from a routing decision."""
    return {"decision": decision, "department": decision.department, "area": decision.area,
            "facility_id": decision.facility_id or keep_facility}


def _required_text(value, *, field, limit):
    value = clean_text(value, field=field, limit=limit)
    if not value:
        raise ComplaintError(_("“%(field)s” must not be empty.") % {"field": field}, field=field)
    return value


def _manual_decision(complaint, department, reason, *, note_ru="", note_en=""):
    """A routing decision made by a person (rule `manual`): complaints_reroute leaves it alone."""
    source = complaint.department.display_name
    target = department.display_name
    return _add(RoutingDecision(
        department=department, authority=department.authority, area=complaint.area, rule=RoutingDecision.Rule.MANUAL,
        engine_version=MANUAL_ENGINE_VERSION,
        explanation_ru=f"{source} передаёт обращение в {target}{note_ru}: {reason}",
        explanation_en=f"{source} handed the complaint on to {target}{note_en}: {reason}"))


def _reroute_away(complaint, reason):
    """Ask the engine again; if it names the department handing the complaint on, send it to city triage."""
    picked = complaint.facility if complaint.decision.rule == RoutingDecision.Rule.FACILITY_PICKED else None
    try:
        decision = route(complaint.location, complaint.category, facility=picked)
    except OutsideCity:
        decision = None
    if decision is not None and decision.department_id != complaint.department_id:
        return decision
    if decision is not None:
        decision.delete()  # the engine's answer is the current department: not used
    triage = Department.objects.filter(is_triage=True).exclude(pk=complaint.department_id).first()
    if triage is None:
        raise ComplaintError(_("The routing finds no other department: name the department to hand it to."),
                             field="department")
    return _manual_decision(complaint, triage, reason, note_ru=" (маршрутизация снова указывает на отправителя)",
                            note_en=" (routing points back at the sender)")


def _original_of(pk, max_hops=50):
    """The id of the original complaint: follow duplicate_of as stored now (the caller's copy may be stale)."""
    for _hop in range(max_hops):
        next_pk = Complaint.objects.filter(pk=pk).values_list("duplicate_of", flat=True).first()
        if next_pk is None:
            return pk
        pk = next_pk
    return pk


def _store_photo(complaint, photo, answer=None):
    Photo.objects.create(complaint=complaint, answer=answer, file=photo, content_type=photo.content_type,
                         width=photo.width, height=photo.height)


# --- re-route: routing decides (routing.services.reroute_plan), complaints applies ------------------------------

# Apply the plan's moves and refreshes in one statement. A complaint that changed since it was decided (a member of
# staff acted on it meanwhile) no longer matches its from_* columns and is skipped: the person's change stands. A
# move gets a public history entry; a refresh a staff-only one (the same department, another facility or distance
# in the explanation). complaints.decision is a deferred foreign key, so the decisions may be inserted after the
# update; each applied row's decision is stored with it, once.
REROUTE_APPLY_SQL = """
    WITH moved AS (
        UPDATE complaints_complaint c
        SET decision_id = m.decision_id, department_id = m.department_id, area_id = m.area_id,
            facility_id = coalesce(m.facility_id, m.kept_facility_id), updated_at = now()
        FROM {plan} m
        WHERE c.id = m.key AND c.decision_id = m.from_decision_id AND c.department_id = m.from_department_id
          AND c.state = ANY(%(open)s)
        RETURNING c.id),
    decisions AS (
        INSERT INTO routing_routingdecision (id, department_id, authority_id, facility_id, area_id, rule, distance_m,
                                             candidates, engine_version, explanation_ru, explanation_en, created_at)
        SELECT m.decision_id, m.department_id, m.authority_id, m.facility_id, m.area_id, m.rule, m.distance_m,
               m.candidates, %(version)s, m.explanation_ru, m.explanation_en, now()
        FROM {plan} m JOIN moved ON moved.id = m.key),
    events AS (
        INSERT INTO complaints_complaintevent (complaint_id, at, actor_label, kind, from_state, to_state,
                                               from_department_id, to_department_id, decision_id, reason, public)
        SELECT m.key, now(), 'system:reroute', 'routed', '', '', m.from_department_id, m.department_id,
               m.decision_id, %(reason)s || CASE WHEN m.moves THEN '' ELSE %(refreshed)s END || m.explanation_ru,
               m.moves
        FROM {plan} m JOIN moved ON moved.id = m.key)
    SELECT count(*) FILTER (WHERE m.moves), count(*) FILTER (WHERE NOT m.moves)
    FROM {plan} m JOIN moved ON moved.id = m.key"""

REROUTE_PREVIEW_SQL = """
    SELECT m.key, c.tracking_code, fd.id, fd.name, fa.short_name, td.id, td.name, ta.short_name, m.rule,
           m.explanation_ru, m.explanation_en
    FROM {plan} m JOIN complaints_complaint c ON c.id = m.key
    JOIN facilities_department fd ON fd.id = m.from_department_id JOIN facilities_authority fa ON fa.id = fd.authority_id
    JOIN facilities_department td ON td.id = m.department_id JOIN facilities_authority ta ON ta.id = td.authority_id
    WHERE m.moves ORDER BY m.key"""


@dataclasses.dataclass
class RerouteMove:
    complaint_id: int
    tracking_code: str
    from_department: str
    to_department: str
    rule: str
    explanation_ru: str
    explanation_en: str


@dataclasses.dataclass
class RerouteResult:
    considered: int  # open complaints the engine decided again
    moved: int  # those whose department changed (in a dry run: would change)
    dry_run: bool
    seconds: float
    moves: list = dataclasses.field(default_factory=list)  # RerouteMove, filled in a dry run
    refreshed: int = 0  # same department, but the decision found other facilities (a new decision, no move)
    searched: int | None = None  # with changed facilities, areas or categories: the complaints that searched again
    connections: int = 1  # connections that decided at once (the full pass uses one per core)
    decided: int | None = None  # without a full search: the complaints decided again in full
    stages: dict = dataclasses.field(default_factory=dict)  # seconds per stage (the plan's, then apply)

    def report(self, *, limit=50):
        """The result as lines for a person (manage.py reroute, reroute_preview): counts, moves by department."""
        verb = "would move" if self.dry_run else "moved"
        over = f" over {self.connections} connections" if self.connections > 1 else ""
        lines = [f"{self.considered} open complaints decided again in {self.seconds} s{over}; {self.moved} {verb}."]
        if self.refreshed:
            lines.append(f"{self.refreshed} keep their department; their decisions found other facilities "
                         f"and {'would be' if self.dry_run else 'were'} refreshed.")
        if self.moves:
            pairs = Counter((m.from_department, m.to_department) for m in self.moves)
            lines += [f"  {n:>6}  {source} -> {target}" for (source, target), n in pairs.most_common()]
            lines += [f"  {m.tracking_code}: {m.from_department} -> {m.to_department} ({m.rule}): {m.explanation_ru}"
                      for m in self.moves[:limit]]
            if len(self.moves) > limit:
                lines.append(f"  ... and {len(self.moves) - limit} more")
        if self.dry_run:
            lines.append("Dry run: nothing was changed.")
        return lines


def _outbox_sweep_soon():
    from .tasks import outbox_sweep

    outbox_sweep.delay()


def _display(name, short_name):
    return name if short_name in name else f"{name} ({short_name})"  # Department.display_name


def complaints_reroute(*, dry_run=False, complaint_ids=None, reason="", spatial=True, facilities=None, areas=None,
                       categories=None) -> RerouteResult:
    """Decide the open complaints again, in one set-based pass; move those whose department changed.

    The one re-route service: imports, admin edits and `manage.py reroute` ask for a re-route through it. Routing
    decides (routing.services.reroute_plan, whose docstring says what `spatial`, `facilities`, `areas` and
    `categories` search again); this applies the plan, in one transaction, one re-route at a time. Each moved
    complaint gets the plan's new RoutingDecision and a ComplaintEvent (kind `routed`, actor `system:reroute`,
    `reason` before the explanation). One whose department stays but whose decision found other facilities or
    distances gets a new decision too, with a staff-only event (`refreshed`). Closed complaints, and complaints
    whose current decision a person made (rule `manual`: a transfer to a named department), keep theirs.
    `complaint_ids` limits the pass. A dry run changes nothing and lists the moves.
    """
    started = time.perf_counter()
    open_states = [str(s) for s in OPEN_STATES]
    with transaction.atomic():
        if not dry_run:
            with connection.cursor() as cur:
                # One re-route at a time: two would compute the same moves and the second would only find them done.
                cur.execute("SELECT pg_advisory_xact_lock(hashtext('geo_ourcity.reroute'))")
        plan = reroute_plan(open_states=open_states, complaint_ids=complaint_ids, spatial=spatial,
                            facilities=facilities, areas=areas, categories=categories)
        moves = []
        applying = time.perf_counter()
        with connection.cursor() as cur:
            if dry_run:
                cur.execute(REROUTE_PREVIEW_SQL.format(plan=plan.table))
                moves = [RerouteMove(r[0], r[1], _display(r[3], r[4]), _display(r[6], r[7]), r[8], r[9], r[10])
                         for r in cur.fetchall()]
                moved, refreshed = len(moves), plan.refreshes
            else:
                cur.execute(REROUTE_APPLY_SQL.format(plan=plan.table),
                            {"open": open_states, "version": ENGINE_VERSION,
                             "reason": f"{reason}: " if reason else "", "refreshed": "decision refreshed: "})
                moved, refreshed = cur.fetchone()
                if moved:  # the moves' mails (written by the history's trigger): the sweep sends them on commit
                    transaction.on_commit(_outbox_sweep_soon, robust=True)
        reroute_plan_drop()
        applied = time.perf_counter()
    return RerouteResult(considered=plan.considered, moved=moved, dry_run=dry_run,
                         seconds=round(time.perf_counter() - started, 3), moves=moves, refreshed=refreshed,
                         searched=plan.searched, connections=plan.connections, decided=plan.decided,
                         stages={**plan.stages, "apply": round(applied - applying, 3),
                                 "commit": round(time.perf_counter() - applied, 3)})
