"""The answer cycle's scheduled work (issue 10), on celery beat (complaints.tasks): each a set-based pass, in
batches, each row taken FOR UPDATE SKIP LOCKED and only while still due, so running it again, or two at once,
does nothing twice (as complaints.overdue).

    confirmations_close()   the confirmation windows that ended in silence: resolved without confirmation
    confirmations_remind()  a reminder mail to the reporter CONFIRM_REMINDER_DAYS before the window ends

The state change is the state machine's (complaints.transitions: the action `expire`, from the states it names).
"""
import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .mails import CONFIRM_REMINDER, confirm_reminder_key
from .models import Complaint, ComplaintEvent, State
from .outbox import outbox_write_many
from .transitions import check_transition, sources

SYSTEM = "system:confirmation"
BATCH = 5000


def confirmations_close(*, now=None, batch=BATCH):
    """Close the answered complaints whose confirmation window has ended (-> resolved, resolved_unconfirmed, a
    public `unconfirmed` event); return how many."""
    now = now or timezone.now()
    from_states = [str(s) for s in sources("expire")]
    closed = 0
    while True:
        with transaction.atomic():
            rows = list(Complaint.objects.filter(state__in=from_states, confirm_until__lte=now)
                        .select_for_update(skip_locked=True).order_by("confirm_until", "id")
                        .values_list("pk", "state")[:batch])
            if not rows:
                return closed
            events = []
            for pk, state in rows:
                to_state, kind = check_transition(state, "expire")
                events.append(ComplaintEvent(complaint_id=pk, kind=kind, actor_label=SYSTEM, from_state=state,
                                             to_state=to_state, public=True,
                                             reason="no answer from the resident within the confirmation window"))
            Complaint.objects.filter(pk__in=[pk for pk, _s in rows]).update(
                state=State.RESOLVED, resolved_at=now, resolved_unconfirmed=True, updated_at=now)
            ComplaintEvent.objects.bulk_create(events)
            closed += len(rows)
        if len(rows) < batch:
            return closed


def confirmations_remind(*, now=None, batch=BATCH):
    """Write a reminder mail (outbox kind confirm_reminder) for each answered complaint with an address whose
    window ends within CONFIRM_REMINDER_DAYS and that has had none for this window; return how many."""
    now = now or timezone.now()
    soon = now + datetime.timedelta(days=settings.CONFIRM_REMINDER_DAYS)
    written = 0
    while True:
        with transaction.atomic():
            rows = list(Complaint.objects.filter(state=State.ANSWERED, confirm_until__gt=now,
                                                 confirm_until__lte=soon, confirm_reminded_at__isnull=True)
                        .exclude(email="").select_for_update(skip_locked=True).order_by("confirm_until", "id")
                        .values_list("pk", "email", "confirm_until")[:batch])
            if not rows:
                return written
            Complaint.objects.filter(pk__in=[pk for pk, _e, _u in rows]).update(confirm_reminded_at=now)
            outbox_write_many([{"kind": CONFIRM_REMINDER, "recipient": email, "complaint_id": pk,
                                "dedupe_key": confirm_reminder_key(pk, until)} for pk, email, until in rows])
            written += len(rows)
        if len(rows) < batch:
            return written
