"""Staff act only on their own departments' complaints; dispatchers and superusers on all. Enforced by the
services (on the locked row) and by the selectors."""
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from complaints import services
from complaints.errors import ComplaintPermissionDenied
from complaints.models import ComplaintEvent, State
from complaints.selectors import tickets_for_user

from .factories import make_user

STAFF_ACTIONS = {
    "take": lambda c, user, deps, other: services.complaint_take(complaint=c, user=user),
    "answer": lambda c, user, deps, other: services.complaint_answer(complaint=c, user=user, text="Done"),
    "transfer": lambda c, user, deps, other: services.complaint_transfer(complaint=c, user=user, reason="Not ours",
                                                                         department=deps["b"]),
    "mark_duplicate": lambda c, user, deps, other: services.complaint_mark_duplicate(complaint=c, user=user, of=other),
    "hide": lambda c, user, deps, other: services.complaint_hide(complaint=c, user=user, reason="Spam"),
}


@pytest.mark.parametrize("action", list(STAFF_ACTIONS))
def test_staff_of_another_department_can_not_act(action, make_complaint, staff, departments):
    complaint = make_complaint()
    with pytest.raises(ComplaintPermissionDenied):
        STAFF_ACTIONS[action](complaint, staff["b"], departments, make_complaint(department=departments["b"]))
    complaint.refresh_from_db()
    assert complaint.state == State.ASSIGNED and complaint.department == departments["a"]
    assert not ComplaintEvent.objects.filter(complaint=complaint).exists()


@pytest.mark.parametrize("who", ["a", "dispatcher", "admin"])
@pytest.mark.parametrize("action", list(STAFF_ACTIONS))
def test_own_staff_dispatchers_and_superusers_can_act(action, who, make_complaint, staff, departments):
    complaint = make_complaint()
    STAFF_ACTIONS[action](complaint, staff[who], departments, make_complaint())
    (event,) = ComplaintEvent.objects.filter(complaint=complaint)
    assert event.actor == staff[who]


def test_inactive_and_anonymous_users_can_not_act(make_complaint, staff):
    complaint = make_complaint()
    staff["a"].is_active = False
    staff["a"].save()
    for user in (staff["a"], AnonymousUser(), None):
        with pytest.raises(ComplaintPermissionDenied):
            services.complaint_take(complaint=complaint, user=user)


def test_member_of_several_departments(make_complaint, departments):
    both = make_user("t-cmp-both", departments=[departments["a"], departments["b"]])
    for key in "ab":
        complaint = make_complaint(department=departments[key])
        assert services.complaint_take(complaint=complaint, user=both).state == State.IN_PROGRESS


def test_permission_is_checked_on_the_current_row_not_the_callers_copy(make_complaint, staff, departments):
    complaint = make_complaint()
    stale = type(complaint).objects.get(pk=complaint.pk)
    services.complaint_transfer(complaint=complaint, user=staff["a"], reason="Theirs", department=departments["b"])
    assert stale.department == departments["a"]  # the caller's copy still says a
    with pytest.raises(ComplaintPermissionDenied):
        services.complaint_take(complaint=stale, user=staff["a"])


def test_tickets_for_user(make_complaint, staff, departments):
    mine = make_complaint(department=departments["a"])
    theirs = make_complaint(department=departments["b"])
    assert set(tickets_for_user(staff["a"])) == {mine}
    assert set(tickets_for_user(staff["b"])) == {theirs}
    for who in ("dispatcher", "admin"):
        assert {mine, theirs} <= set(tickets_for_user(staff[who]))
    assert not tickets_for_user(AnonymousUser()).exists()
    assert not tickets_for_user(None).exists()


def test_tickets_are_ordered_by_deadline(make_complaint, staff):
    late = make_complaint(deadline=timezone.now() + timedelta(days=9))
    soon = make_complaint(deadline=timezone.now() + timedelta(days=1))
    assert list(tickets_for_user(staff["a"])) == [soon, late]
