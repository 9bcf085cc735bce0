"""Real concurrent transactions: threads with their own database connections act on the same complaint at once.

Each locked section is stretched (a short sleep after the state check), so without the row lock both threads
would pass the check on the same old state and one change would be lost; with it the second waits, sees the
first's result, and either proceeds validly or gets TransitionNotAllowed.
"""
import threading
import time

import pytest
from django.db import connection

from complaints import services
from complaints.errors import TransitionNotAllowed
from complaints.models import Complaint, ComplaintEvent, State
from complaints.tracking import confirmation_key
from complaints.transitions import TRANSITIONS
from routing.models import RoutingDecision

from .factories import MOSCOW

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def slow_locked_section(monkeypatch):
    check = services.check_transition

    def slow_check(state, action):
        result = check(state, action)
        time.sleep(0.2)
        return result

    monkeypatch.setattr(services, "check_transition", slow_check)


def run_at_once(*calls):
    """Run the calls in threads released together; return each one's result or exception."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def worker(index, call):
        try:
            barrier.wait(timeout=30)
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[index] = exc
        finally:
            connection.close()  # each thread has its own connection: close it, or the test DB can't be dropped

    threads = [threading.Thread(target=worker, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


def assert_consistent_history(complaint):
    """State events chain: each starts where the previous ended, each is an allowed move, the last is the state.
    (Events without a state change, such as a re-route's, are not part of the chain.)"""
    complaint.refresh_from_db()
    events = list(ComplaintEvent.objects.filter(complaint=complaint).exclude(to_state="").order_by("at", "id"))
    allowed = {(frm, to) for sources, to, _kind in TRANSITIONS.values() for frm in sources}
    state = events[0].from_state if events else complaint.state
    for event in events:
        assert event.from_state == state, [(e.kind, e.from_state, e.to_state) for e in events]
        assert (event.from_state, event.to_state) in allowed
        state = event.to_state
    assert state == complaint.state
    return events


def outcome(results):
    return sorted("ok" if isinstance(r, Complaint) else type(r).__name__ for r in results)


def test_two_staff_take_the_same_complaint(make_complaint, staff, slow_locked_section):
    complaint = make_complaint()
    results = run_at_once(lambda: services.complaint_take(complaint=complaint, user=staff["a"]),
                          lambda: services.complaint_take(complaint=complaint, user=staff["dispatcher"]))
    assert outcome(results) == ["TransitionNotAllowed", "ok"]
    events = assert_consistent_history(complaint)
    assert [(e.from_state, e.to_state) for e in events] == [("assigned", "in_progress")]


def test_two_staff_answer_the_same_complaint(make_complaint, staff, slow_locked_section):
    complaint = make_complaint(state=State.IN_PROGRESS)
    results = run_at_once(
        lambda: services.complaint_answer(complaint=complaint, user=staff["a"], text="First answer"),
        lambda: services.complaint_answer(complaint=complaint, user=staff["dispatcher"], text="Second answer"))
    assert outcome(results) == ["TransitionNotAllowed", "ok"]
    assert_consistent_history(complaint)
    assert complaint.answers.count() == 1


@pytest.mark.parametrize("round_", range(3))
def test_take_and_answer_at_once_leave_a_valid_order(make_complaint, staff, slow_locked_section, round_):
    """Whichever runs first, the history is a valid chain: take then answer, or answer then a refused take."""
    complaint = make_complaint()
    results = run_at_once(
        lambda: services.complaint_take(complaint=complaint, user=staff["a"]),
        lambda: services.complaint_answer(complaint=complaint, user=staff["dispatcher"], text="Done"))
    events = assert_consistent_history(complaint)
    kinds = [e.kind for e in events]
    assert complaint.state == State.ANSWERED
    if kinds == ["state", "answer"]:
        assert all(isinstance(r, Complaint) for r in results)
    else:
        assert kinds == ["answer"] and isinstance(results[0], TransitionNotAllowed)


def test_transfer_and_answer_at_once(make_complaint, staff, departments, slow_locked_section):
    """Transfer first: the answer then belongs to the new department. Answer first: the transfer is refused."""
    complaint = make_complaint(state=State.IN_PROGRESS)
    results = run_at_once(
        lambda: services.complaint_transfer(complaint=complaint, user=staff["a"], reason="Theirs",
                                            department=departments["b"]),
        lambda: services.complaint_answer(complaint=complaint, user=staff["dispatcher"], text="Done"))
    kinds = [e.kind for e in assert_consistent_history(complaint)]
    answer = complaint.answers.get()
    if kinds == ["transfer", "answer"]:
        assert outcome(results) == ["ok", "ok"] and answer.department == departments["b"]
    else:
        assert kinds == ["answer"] and isinstance(results[0], TransitionNotAllowed)
        assert answer.department == departments["a"] == complaint.department


def test_resident_confirms_and_denies_at_once(make_complaint, slow_locked_section):
    complaint = make_complaint(state=State.ANSWERED)
    code, key = complaint.tracking_code, confirmation_key(complaint)
    results = run_at_once(lambda: services.complaint_confirm(tracking_code=code, key=key),
                          lambda: services.complaint_deny(tracking_code=code, key=key, reason="No"))
    assert outcome(results) == ["TransitionNotAllowed", "ok"]
    assert_consistent_history(complaint)
    assert complaint.reopen_count == (1 if complaint.state == State.REOPENED else 0)


def test_opposite_duplicate_marks_make_no_cycle(make_complaint, staff, slow_locked_section):
    x, y = make_complaint(), make_complaint()
    results = run_at_once(lambda: services.complaint_mark_duplicate(complaint=x, user=staff["a"], of=y),
                          lambda: services.complaint_mark_duplicate(complaint=y, user=staff["a"], of=x))
    assert outcome(results) == ["TransitionNotAllowed", "ok"]
    x.refresh_from_db()
    y.refresh_from_db()
    assert sorted([x.state, y.state]) == [State.ASSIGNED, State.DUPLICATE]


def test_fifty_simultaneous_creates_are_stored_and_routed_once(demo_city, category):
    # Points spread over central Moscow, so the calls route to several districts at once.
    points = [(MOSCOW[0] + 0.004 * (i % 10 - 5), MOSCOW[1] + 0.003 * (i // 10 - 2)) for i in range(50)]
    results = run_at_once(*[
        (lambda p=p, i=i: services.complaint_create(category=category, point=p, description=f"complaint {i}"))
        for i, p in enumerate(points)])
    errors = [r for r in results if not isinstance(r, Complaint)]
    assert not errors, errors[:3]

    complaints = Complaint.objects.all()
    assert complaints.count() == 50
    assert sorted(complaints.values_list("description", flat=True)) == sorted(f"complaint {i}" for i in range(50))
    assert len(set(complaints.values_list("tracking_code", flat=True))) == 50
    assert len(set(complaints.values_list("token", flat=True))) == 50
    assert set(complaints.values_list("state", flat=True)) == {State.ASSIGNED}
    # Routed exactly once: one decision per complaint, one `created` and one `routed` event each.
    assert RoutingDecision.objects.count() == 50
    assert len(set(complaints.values_list("decision", flat=True))) == 50
    for complaint in complaints:
        assert [e.kind for e in ComplaintEvent.objects.filter(complaint=complaint)] == ["created", "routed"]
    assert len(set(complaints.values_list("department", flat=True))) > 1
