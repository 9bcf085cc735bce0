"""Input checks for a new complaint that need no database lock: attributes, text fields, contact, location, the
facility the resident picked."""
import math
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from geo_ourcity.languages import translated
from routing.engine import FacilityNotAllowed, picked_facility_check
from routing.models import CategoryAttribute

from .errors import ComplaintError, Faults
from .models import Complaint

DESCRIPTION_MAX = 4000
STRING_MAX = 1000  # a one-line answer; `text` attributes may be as long as a description

Datatype = CategoryAttribute.Datatype
# Characters that XML 1.0 can't carry (C0 controls but tab, line feed and carriage return): refused in every text a
# complaint keeps, so that whatever shows it (pages, Open311 JSON and XML, feeds) can show it as it was written.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
SHOWN_MAX = 60  # of a value repeated in an error message: never kilobytes of the input echoed back


# What a message calls a field of the complaint: its label, never its internal name. (Open311's own parameters
# that no form shows, such as media_url, keep their protocol name: that is what the integrator sent.)
FIELD_LABELS = {
    "description": gettext_lazy("Description"),
    "address_string": gettext_lazy("Address"),
    "email": gettext_lazy("E-mail"),
    "phone": gettext_lazy("Phone"),
    "first_name": gettext_lazy("First name"),
    "last_name": gettext_lazy("Last name"),
}


def attribute_label(attribute):
    """The question's label (its description) in the active language, else the city's, else any filled in; the
    code only if the catalogue gives no label at all."""
    return translated(attribute.description_i18n) or attribute.code


def shown(value):
    value = str(value)
    return value if len(value) <= SHOWN_MAX else value[:SHOWN_MAX - 1] + "…"


def clean_attributes(category, raw):
    """Check the answers to a category's extra questions (Open311 attributes); return them normalised.

    `raw` maps attribute codes to a string, or a list of strings for `multivaluelist`. Empty values count as
    absent. Numbers come back as int or float, datetimes as ISO 8601 with a zone, lists deduplicated. Every
    question is checked: all the faults are raised together (errors.ComplaintInvalid), each naming its question by
    its label, with the attribute's code as the error's `field`.
    """
    raw = dict(raw or {})
    result = {}
    faults = Faults()
    for attribute in category.attributes.all():
        value = raw.pop(attribute.code, None)
        if not attribute.variable:  # informational: nothing to answer
            continue
        if value in (None, "", [], ()):
            if attribute.required:
                faults.add(ComplaintError(_("Fill in “%(label)s”.") % {"label": attribute_label(attribute)},
                                          field=attribute.code))
            continue
        cleaned = faults.check(_clean_value, attribute, value)
        if cleaned is not None:
            result[attribute.code] = cleaned
    for code in sorted(raw):
        faults.add(ComplaintError(_("Unknown attribute “%(code)s” for this service.") % {"code": shown(code)},
                                  field=shown(code)))
    faults.raise_any()
    return result


def _clean_value(attribute, value):
    code, datatype = attribute.code, attribute.datatype
    label = attribute_label(attribute)

    def fail(message, **extra):
        return ComplaintError(message % {"label": label, **extra}, field=code)

    if datatype == Datatype.MULTI:
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
            raise fail(_("“%(label)s” must be a list of values."))
        values = [v.strip() for v in values]
        keys = _keys(attribute)
        unknown = [v for v in values if v not in keys]
        if unknown:
            raise fail(_("“%(label)s”: “%(value)s” is not one of the allowed values."),
                       value=shown(unknown[0]))
        return list(dict.fromkeys(values))

    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise fail(_("“%(label)s” takes a single value."))
        value = value[0]
    if not isinstance(value, str):
        raise fail(_("“%(label)s” must be text."))
    value = value.strip()

    if datatype == Datatype.SINGLE:
        if value not in _keys(attribute):
            raise fail(_("“%(label)s”: “%(value)s” is not one of the allowed values."), value=shown(value))
        return value
    if datatype == Datatype.NUMBER:
        try:
            number = Decimal(value)
            as_float = float(number)
        except (InvalidOperation, ValueError):
            raise fail(_("“%(label)s” must be a number.")) from None
        if not math.isfinite(as_float):
            raise fail(_("“%(label)s” must be a finite number."))
        # Whole numbers stay exact ints while a float can hold them; anything else is a float.
        return int(number) if abs(as_float) < 2 ** 53 and number == number.to_integral_value() else as_float
    if datatype == Datatype.DATETIME:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise fail(_("“%(label)s” must be a date and time in ISO 8601, "
                         "e.g. 2026-11-23T14:30:00+03:00.")) from None
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        return moment.isoformat()
    return clean_text(value, field=code, limit=DESCRIPTION_MAX if datatype == Datatype.TEXT else STRING_MAX,
                      label=label)


def _keys(attribute):
    return {str(item["key"]) for item in attribute.values if isinstance(item, dict) and "key" in item}


def clean_text(value, *, field, limit, label=None):
    """Stripped text of at most `limit` characters, without NUL (PostgreSQL can not store it) or another control
    character (CONTROL_CHARACTERS). Messages name the field by `label` (default: FIELD_LABELS, else its name)."""
    value = str(value or "").strip()
    shown_as = label or FIELD_LABELS.get(field, field)
    if len(value) > limit:
        raise ComplaintError(_("“%(field)s” is longer than %(limit)d characters.")
                             % {"field": shown_as, "limit": limit}, field=field)
    if "\x00" in value:
        raise ComplaintError(_("“%(field)s” contains a NUL character.") % {"field": shown_as}, field=field)
    if CONTROL_CHARACTERS.search(value):
        raise ComplaintError(_("“%(field)s” contains a control character.") % {"field": shown_as}, field=field)
    return value


def clean_media_url(value):
    """A photo's address as the reporter's app gives it (Open311 `media_url`): an absolute http(s) URL of at most
    1,000 characters, or "". It is stored and shown back, never fetched (the server makes no request to it)."""
    value = str(value or "").strip()
    if not value:
        return ""
    limit = Complaint._meta.get_field("media_url").max_length
    if len(value) > limit:
        raise ComplaintError(_("“%(field)s” is longer than %(limit)d characters.")
                             % {"field": "media_url", "limit": limit}, field="media_url")
    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError:
        raise ComplaintError(_("“media_url” must be an http or https address of a photo."),
                             field="media_url") from None
    if "@" in value.split("/", 3)[2]:  # no user name or password in a URL that everyone will see
        raise ComplaintError(_("“media_url” must be an http or https address of a photo."), field="media_url")
    return value


def clean_contact(**fields):
    """The resident's contact fields, checked against the lengths of the Complaint model."""
    faults = Faults()
    cleaned = {name: faults.check(clean_text, value, field=name, limit=Complaint._meta.get_field(name).max_length)
               for name, value in fields.items()}
    if cleaned.get("email"):
        try:
            validate_email(cleaned["email"])
        except ValidationError:
            faults.add(ComplaintError(_("“%(value)s” is not a valid e-mail address.")
                                      % {"value": shown(cleaned["email"])}, field="email"))
    faults.raise_any()
    return cleaned


def clean_location(point):
    """(lon, lat) or a GEOS Point -> (lon, lat) floats, finite and on the globe."""
    try:
        if hasattr(point, "transform"):  # a GEOS Point
            if point.srid not in (None, 4326):
                point = point.transform(4326, clone=True)
            point = (point.x, point.y)
        lon, lat = point
        lon, lat = float(lon), float(lat)
    except (TypeError, ValueError):
        raise ComplaintError(_("The location must be a longitude and a latitude."), field="location") from None
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise ComplaintError(_("The location is not a valid longitude and latitude."), field="location")
    return lon, lat


def clean_facility(category, location, facility):
    """The id of the facility the resident picked (a Facility, an id or None), if routing accepts it for this
    point and category (routing.engine.picked_facility_check: it covers the point or lies within the category's
    radius); else a ComplaintError on the `facility` field that says why."""
    if facility in (None, ""):
        return None
    try:
        facility = int(getattr(facility, "pk", facility))
    except (TypeError, ValueError):
        raise ComplaintError(_("The facility must be given by its number."), field="facility") from None
    try:
        return picked_facility_check(location, category, facility)
    except FacilityNotAllowed as exc:
        if exc.reason == "too_far":
            message = _("The facility you picked is %(distance)d m from the point: for this problem it must be at "
                        "the point or within %(radius)d m of it.") % {"distance": round(exc.distance_m),
                                                                    "radius": exc.radius_m}
        else:
            message = {
                "unknown": _("There is no such facility."),
                "retired": _("This facility is no longer in the registry."),
                "wrong_type": _("This facility is not one that this kind of problem is about."),
            }[exc.reason]
        raise ComplaintError(message, field="facility") from None
