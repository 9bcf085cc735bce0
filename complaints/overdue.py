"""Overdue marks, on the scheduler (complaints.tasks.overdue_mark): a complaint still open past its deadline
(complaints.selectors.overdue_q, the rule the staff lists show) is marked once, `overdue_at`, with a staff-only
line in its history, in one set-based pass. Running it again, or two at once, marks nothing twice (each row is
taken FOR UPDATE SKIP LOCKED and only while unmarked)."""
from django.db import transaction
from django.utils import timezone

from .models import Complaint, ComplaintEvent
from .selectors import overdue_q

SYSTEM = "system:overdue"
BATCH = 5000


def complaints_mark_overdue(*, now=None, batch=BATCH):
    """Mark the open complaints past their deadline that are not marked yet; return how many were marked."""
    now = now or timezone.now()
    marked = 0
    while True:
        with transaction.atomic():
            rows = list(Complaint.objects.filter(overdue_q(now), overdue_at__isnull=True)
                        .select_for_update(skip_locked=True).order_by("deadline", "id")
                        .values_list("pk", "state", "deadline")[:batch])
            if not rows:
                return marked
            Complaint.objects.filter(pk__in=[pk for pk, _s, _d in rows]).update(overdue_at=now)
            ComplaintEvent.objects.bulk_create([
                ComplaintEvent(complaint_id=pk, kind=ComplaintEvent.Kind.OVERDUE, actor_label=SYSTEM,
                               from_state=state, to_state=state, public=False,
                               reason=f"past its deadline of {timezone.localtime(deadline):%Y-%m-%d %H:%M}")
                for pk, state, deadline in rows])
            marked += len(rows)
        if len(rows) < batch:
            return marked
