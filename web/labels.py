"""What residents read for the project's codes: state names and colours, history events, bilingual fields."""
from django.utils.translation import get_language, pgettext_lazy

from complaints.models import ComplaintEvent, State

STATE_LABELS = {
    State.NEW: pgettext_lazy("complaint state", "new"),
    State.ASSIGNED: pgettext_lazy("complaint state", "assigned"),
    State.IN_PROGRESS: pgettext_lazy("complaint state", "in progress"),
    State.ANSWERED: pgettext_lazy("complaint state", "answered"),
    State.RESOLVED: pgettext_lazy("complaint state", "resolved"),
    State.REOPENED: pgettext_lazy("complaint state", "reopened"),
    State.TRANSFERRED: pgettext_lazy("complaint state", "transferred"),
    State.DUPLICATE: pgettext_lazy("complaint state", "duplicate"),
    State.HIDDEN: pgettext_lazy("complaint state", "hidden"),
}

# One colour per state on the map, in the legend and in the charts.
STATE_COLOURS = {
    State.NEW: "#e03131",
    State.ASSIGNED: "#f76707",
    State.IN_PROGRESS: "#f59f00",
    State.ANSWERED: "#1c7ed6",
    State.RESOLVED: "#2f9e44",
    State.REOPENED: "#c2255c",
    State.TRANSFERRED: "#7048e8",
    State.DUPLICATE: "#868e96",
    State.HIDDEN: "#343a40",
}

EVENT_LABELS = {
    ComplaintEvent.Kind.CREATED: pgettext_lazy("history", "Submitted"),
    ComplaintEvent.Kind.STATE: pgettext_lazy("history", "State changed"),
    ComplaintEvent.Kind.ROUTED: pgettext_lazy("history", "Sent to the responsible department"),
    ComplaintEvent.Kind.ANSWER: pgettext_lazy("history", "Answered"),
    ComplaintEvent.Kind.TRANSFER: pgettext_lazy("history", "Handed to another department"),
    ComplaintEvent.Kind.DUPLICATE: pgettext_lazy("history", "Marked as a duplicate"),
    ComplaintEvent.Kind.CONFIRMED: pgettext_lazy("history", "The resident confirmed the fix"),
    ComplaintEvent.Kind.REOPENED: pgettext_lazy("history", "The resident said it is not fixed"),
    ComplaintEvent.Kind.HIDDEN: pgettext_lazy("history", "Hidden by moderation"),
    ComplaintEvent.Kind.CATEGORY: pgettext_lazy("history", "Category changed"),
    ComplaintEvent.Kind.OVERDUE: pgettext_lazy("history", "Past its deadline"),
}


def state_label(state):
    return STATE_LABELS.get(state, state)


def lang():
    """The active language's suffix of bilingual model fields: "en" or "ru" (the default)."""
    return "en" if (get_language() or "ru").startswith("en") else "ru"


def localized(obj, field):
    """obj.<field>_en in English, obj.<field>_ru otherwise (and when the English one is empty)."""
    return getattr(obj, f"{field}_{lang()}", "") or getattr(obj, f"{field}_ru", "")


def localized_value(value):
    """The label of one value of an attribute's list ({"key", "name_ru", "name_en"} or {"key", "name"})."""
    return value.get(f"name_{lang()}") or value.get("name_ru") or value.get("name") or str(value.get("key"))
