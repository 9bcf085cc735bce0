"""What residents read for the project's codes: state names and colours, history events, bilingual fields."""
from django.utils.translation import pgettext_lazy

from complaints.models import ComplaintEvent, State
from geo_ourcity.languages import CONTENT_LANGUAGES, content_language, default_content_language, translated

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
    State.MODERATION: pgettext_lazy("complaint state", "answer in moderation"),
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
    State.MODERATION: "#1098ad",
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
    ComplaintEvent.Kind.MODERATION: pgettext_lazy("history", "Answer sent to moderation"),
    ComplaintEvent.Kind.RETURNED: pgettext_lazy("history", "Answer returned by the moderator"),
    ComplaintEvent.Kind.UNCONFIRMED: pgettext_lazy("history", "Resolved without confirmation"),
    ComplaintEvent.Kind.CHECKED: pgettext_lazy("history", "A volunteer checked on the spot: fixed"),
    ComplaintEvent.Kind.CHECK_FAILED: pgettext_lazy("history", "A volunteer checked on the spot: not fixed"),
}


def state_label(state):
    return STATE_LABELS.get(state, state)


def lang():
    """The active language's suffix of bilingual model fields ("ru", "en"): its own, else the city's default
    language's, else English (geo_ourcity.languages)."""
    return content_language()


def _order():
    return dict.fromkeys([lang(), default_content_language(), *CONTENT_LANGUAGES])


def localized(obj, field):
    """A field in the active language: a translated field (obj.<field>_i18n, {language: text}) through
    geo_ourcity.languages.translated (the active language, else the default's ...); a field the service writes
    in two languages (obj.<field>_ru, obj.<field>_en) in the active one, else the first that is filled in."""
    values = getattr(obj, f"{field}_i18n", None)
    if values is not None:
        return translated(values)
    return next((v for v in (getattr(obj, f"{field}_{c}", "") for c in _order()) if v), "")


def localized_value(value, code=None):
    """The label of one value of an attribute's list ({"key", "name_i18n": {language: text}}), in `code` (default:
    the active language), else the default language's, else its key."""
    return translated(value.get("name_i18n") or {}, code) or str(value.get("key"))
