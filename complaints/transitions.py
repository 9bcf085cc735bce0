"""The complaint state machine: the one place that says which action may move a complaint from which state.

Services call `check_transition` on the locked row before they change anything.
"""
from django.utils.translation import gettext as _

from .errors import TransitionNotAllowed
from .models import ComplaintEvent, State

# States in which a department works a complaint (it is theirs and not yet answered or closed).
WORKABLE = frozenset({State.ASSIGNED, State.IN_PROGRESS, State.REOPENED, State.TRANSFERRED})

Kind = ComplaintEvent.Kind

# action -> (states it may start from, state it leads to, kind of the history event it appends)
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
