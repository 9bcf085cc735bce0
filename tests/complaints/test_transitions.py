"""Every action from every state: the allowed ones move the complaint and append one event, the others raise
TransitionNotAllowed and change nothing. The expected table is written out here, independently of the code's."""
import pytest

from complaints import services
from complaints.errors import TransitionNotAllowed
from complaints.models import ComplaintEvent, State
from complaints.tracking import confirmation_key
from complaints.transitions import TRANSITIONS, allowed_actions

S = State
WORKABLE = {S.ASSIGNED, S.IN_PROGRESS, S.REOPENED, S.TRANSFERRED}
EXPECTED = {  # action -> {from state: to state}
    "take": {S.ASSIGNED: S.IN_PROGRESS, S.REOPENED: S.IN_PROGRESS, S.TRANSFERRED: S.IN_PROGRESS},
    "answer": {s: S.ANSWERED for s in WORKABLE},
    "transfer": {s: S.TRANSFERRED for s in WORKABLE},
    "mark_duplicate": {s: S.DUPLICATE for s in WORKABLE},
    "hide": {s: S.HIDDEN for s in S if s != S.HIDDEN},
    "confirm": {S.ANSWERED: S.RESOLVED},
    "deny": {S.ANSWERED: S.REOPENED},
}
KINDS = {"take": "state", "answer": "answer", "transfer": "transfer", "mark_duplicate": "duplicate",
         "hide": "hidden", "confirm": "confirmed", "deny": "reopened"}


def act(action, complaint, *, user, departments, make_complaint):
    """Run one service the way its caller would."""
    if action == "take":
        return services.complaint_take(complaint=complaint, user=user)
    if action == "answer":
        return services.complaint_answer(complaint=complaint, user=user, text="Fixed the bench.")
    if action == "transfer":
        return services.complaint_transfer(complaint=complaint, user=user, reason="Not ours: the park's",
                                           department=departments["b"])
    if action == "mark_duplicate":
        return services.complaint_mark_duplicate(complaint=complaint, user=user, of=make_complaint())
    if action == "hide":
        return services.complaint_hide(complaint=complaint, user=user, reason="Abusive language")
    if action == "confirm":
        return services.complaint_confirm(tracking_code=complaint.tracking_code,
                                          key=confirmation_key(complaint))
    if action == "deny":
        return services.complaint_deny(tracking_code=complaint.tracking_code, key=confirmation_key(complaint),
                                       reason="Still broken")
    raise AssertionError(action)


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("action", list(EXPECTED))
def test_action_from_state(action, state, make_complaint, staff, departments):
    complaint = make_complaint(state=state)
    user = staff["a"]
    kwargs = {"user": user, "departments": departments, "make_complaint": make_complaint}
    if state in EXPECTED[action]:
        after = act(action, complaint, **kwargs)
        after.refresh_from_db()
        assert after.state == EXPECTED[action][state]
        (event,) = ComplaintEvent.objects.filter(complaint=complaint)
        assert (event.kind, event.from_state, event.to_state) == (KINDS[action], state, after.state)
        resident = action in ("confirm", "deny")
        assert event.actor == (None if resident else user)
        assert event.actor_label == ("resident" if resident else user.username)
        assert event.at is not None
    else:
        with pytest.raises(TransitionNotAllowed):
            act(action, complaint, **kwargs)
        complaint.refresh_from_db()
        assert complaint.state == state
        assert not ComplaintEvent.objects.filter(complaint=complaint).exists()


def test_the_code_table_matches_the_spec():
    """Same facts as above, read from the one table the services use (also covers `route`)."""
    for action, moves in EXPECTED.items():
        sources, to_state, _kind = TRANSITIONS[action]
        assert set(sources) == set(moves) and set(moves.values()) == {to_state}
    assert TRANSITIONS["route"][:2] == ({S.NEW}, S.ASSIGNED)
    assert allowed_actions(S.RESOLVED) == ["hide", "check", "check_failed"] and allowed_actions(S.HIDDEN) == []
