"""complaints.services.complaints_batch: the lifecycle services inside a batch follow the same rules as one by one
(state machine, who may act, the confirmation window) and write the same history, in one transaction when the batch
ends; a batch that fails, or whose complaint someone else changed meanwhile, writes nothing."""
import pytest

from complaints.errors import ComplaintPermissionDenied, TransitionNotAllowed
from complaints.models import Answer, Complaint, ComplaintEvent
from complaints.services import (complaint_answer, complaint_confirm, complaint_create, complaint_deny,
                                 complaint_take, complaint_transfer, complaints_batch)
from complaints.tracking import confirmation_key
from routing.models import Category

from .factories import MOSCOW, make_user

pytestmark = pytest.mark.django_db


def new():
    return complaint_create(category=Category.objects.get(code="yard-rubbish"), point=MOSCOW, description="Test")


def life(c, admin, other):
    c = complaint_take(complaint=c, user=admin)
    c = complaint_transfer(complaint=c, user=admin, reason="not ours", department=other)
    c = complaint_take(complaint=c, user=admin)
    c = complaint_answer(complaint=c, user=admin, text="Done.")
    c = complaint_deny(tracking_code=c.tracking_code, key=confirmation_key(c), reason="not done")
    c = complaint_answer(complaint=c, user=admin, text="Done again.")
    return complaint_confirm(tracking_code=c.tracking_code, key=confirmation_key(c))


def history(c):
    c = Complaint.objects.get(pk=c.pk)
    return ([(e.kind, e.from_state, e.to_state, e.reason, e.to_department_id)
             for e in ComplaintEvent.objects.filter(complaint=c).order_by("at", "id")],
            (c.state, c.department_id, c.reopen_count, c.decision.rule, c.answered_at is not None,
             c.resolved_at is not None, c.confirm_until is not None),
            list(Answer.objects.filter(complaint=c).order_by("id").values_list("text", "state")))


def test_a_batch_writes_the_history_one_by_one_would(departments):
    admin = make_user("t-batch-admin", superuser=True)
    alone = life(new(), admin, departments["a"])
    with complaints_batch() as batch:
        c = batch.adopt(new())
        batched = life(c, admin, departments["a"])
        assert ComplaintEvent.objects.filter(complaint=c).count() == 2  # nothing written yet but the filing
    assert history(batched) == history(alone)
    assert history(batched)[1][0] == "resolved"


def test_the_rules_hold_inside_a_batch(departments):
    admin = make_user("t-batch-admin2", superuser=True)
    stranger = make_user("t-batch-stranger", departments=[departments["b"]])
    c = new()
    with pytest.raises(ComplaintPermissionDenied):
        with complaints_batch() as batch:
            batch.adopt(c)
            complaint_take(complaint=c, user=stranger)
    with pytest.raises(TransitionNotAllowed):
        with complaints_batch() as batch:
            batch.adopt(c)
            complaint_take(complaint=c, user=admin)
            complaint_confirm(tracking_code=c.tracking_code, key=confirmation_key(c))  # not answered
    assert Complaint.objects.get(pk=c.pk).state == "assigned"  # nothing was written
    assert ComplaintEvent.objects.filter(complaint=c).count() == 2


def test_a_complaint_someone_else_moved_meanwhile_is_refused(departments):
    admin = make_user("t-batch-admin4", superuser=True)
    first, second = new(), new()
    batch_cm = complaints_batch()
    batch = batch_cm.__enter__()
    for c in (first, second):
        complaint_take(complaint=batch.adopt(c), user=admin)
    Complaint.objects.filter(pk=second.pk).update(state="in_progress")  # another writer
    with pytest.raises(TransitionNotAllowed):
        batch_cm.__exit__(None, None, None)
    assert ComplaintEvent.objects.filter(complaint__in=[first, second]).count() == 4  # the two filings each
    assert Complaint.objects.get(pk=first.pk).state == "assigned"
