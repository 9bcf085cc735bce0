"""The complaint state machine: the one place that says which action may move a complaint from which state.

Services call `check_transition` on the locked row before they change anything.
"""
from django.utils.translation import gettext as _

from .errors import TransitionNotAllowed
from .models import ComplaintEvent, State

# States in which a department works a complaint (it is theirs and not yet answered or closed).
WORKABLE = frozenset({State.ASSIGNED, State.IN_PROGRESS, State.REOPENED, State.TRANSFERRED})

# States in which a volunteer may check a complaint on the spot (answered, or resolved).
CHECKABLE = frozenset({State.ANSWERED, State.RESOLVED})

Kind = ComplaintEvent.Kind

# action -> (states it may start from, state it leads to (None: it stays), kind of the history event it appends)
TRANSITIONS = {
    "route": (frozenset({State.NEW}), State.ASSIGNED, Kind.ROUTED),
    "take": (frozenset({State.ASSIGNED, State.REOPENED, State.TRANSFERRED}), State.IN_PROGRESS, Kind.STATE),
    "answer": (WORKABLE, State.ANSWERED, Kind.ANSWER),
    "transfer": (WORKABLE, State.TRANSFERRED, Kind.TRANSFER),
    # A category change (a suggestion accepted): the state stays unless the department changes, then it is
    # `transferred` (complaints.services.complaint_recategorise).
    "recategorise": (WORKABLE, State.TRANSFERRED, Kind.CATEGORY),
    "mark_duplicate": (WORKABLE, State.DUPLICATE, Kind.DUPLICATE),
    # Moderation may hide a complaint in any state (even a closed one: abusive text stays abusive).
    "hide": (frozenset(State) - {State.HIDDEN}, State.HIDDEN, Kind.HIDDEN),
    "confirm": (frozenset({State.ANSWERED}), State.RESOLVED, Kind.CONFIRMED),
    "deny": (frozenset({State.ANSWERED}), State.REOPENED, Kind.REOPENED),
    # --- the answer cycle (issue 10) ---
    # The department's answer where the catalogue or its authority wants moderation: it waits for a moderator.
    "submit_answer": (WORKABLE, State.MODERATION, Kind.MODERATION),
    # A moderator publishes it (the public sees it now) or returns it to the department with a reason; the
    # deadline is not touched either way.
    "publish": (frozenset({State.MODERATION}), State.ANSWERED, Kind.ANSWER),
    "return_answer": (frozenset({State.MODERATION}), State.IN_PROGRESS, Kind.RETURNED),
    # The confirmation window ended in silence (the scheduler): resolved without confirmation.
    "expire": (frozenset({State.ANSWERED}), State.RESOLVED, Kind.UNCONFIRMED),
    # A volunteer's on-site check of a recent answer or fix: "fixed" leaves the state as it is (None), "not fixed"
    # reopens it to its department.
    "check": (CHECKABLE, None, Kind.CHECKED),
    "check_failed": (CHECKABLE, State.REOPENED, Kind.CHECK_FAILED),
}


def allowed_actions(state):
    return [action for action, (sources, _to, _kind) in TRANSITIONS.items() if state in sources]


def check_transition(state, action):
    """Return (to_state, event kind) for `action` from `state`, or raise TransitionNotAllowed."""
    sources, to_state, kind = TRANSITIONS[action]
    if state not in sources:
        raise TransitionNotAllowed(
            _("This action (%(action)s) is not possible while the complaint is %(state)s.")
            % {"action": action, "state": State(state).label})
    return to_state, kind


def sources(action):
    """The states `action` may start from: for set-based passes (the scheduler) that select the rows it may move."""
    return TRANSITIONS[action][0]
