"""Template filters of the staff pages: labels of the project's codes in the active language."""
from django import template

from web.labels import EVENT_LABELS, STATE_COLOURS, localized, state_label

register = template.Library()


@register.filter
def in_language(obj, field):
    """obj.<field>_en or obj.<field>_ru, by the active language: {{ category|in_language:"name" }}."""
    return localized(obj, field) if obj is not None else ""


@register.filter
def state_name(state):
    return state_label(state)


@register.filter
def state_colour(state):
    return STATE_COLOURS.get(state, "#adb5bd")


@register.filter
def event_name(kind):
    return EVENT_LABELS.get(kind, kind)


@register.filter
def get_item(mapping, key):
    """mapping[key], or None: {{ flags|get_item:t.pk }}."""
    return mapping.get(key) if mapping else None


@register.filter
def percent(value):
    """0.834 -> "83 %"."""
    return f"{round(float(value) * 100)} %"
