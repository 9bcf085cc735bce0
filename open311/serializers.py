"""Open311 input parsing and output shapes. Names and types are the spec's: ids and codes are strings, dates
ISO 8601 with their zone. What a complaint may contain (lengths, characters, the e-mail address, attributes, the
facility) is complaints.validation's to check, once, for every way in; here only the protocol: which parameters,
their types (numbers, coordinates, files), how list and attribute parameters are spelt.
"""
import math
import re
from datetime import datetime, time, timedelta

from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from complaints.models import CLOSED_STATES, ComplaintEvent
from facilities.search import normalise_query, place_for_address
from complaints.tracking import redact
from complaints.validation import CONTROL_CHARACTERS
from geo_ourcity.languages import (CONTENT_LANGUAGES, configured_languages, content_language,
                                   default_content_language, default_language, translated)

from .selectors import open311_service_current, parse_request_id

MAX_WINDOW = timedelta(days=90)
PAGE_SIZE_MAX = 1000
RADIUS_MAX_M = 50_000
LANGUAGES = CONTENT_LANGUAGES
_ATTRIBUTE_KEY = re.compile(r"^attribute\[([^\[\]]+)\](\[\])?$")
# Characters XML 1.0 can't carry (complaints.validation refuses them in what a complaint keeps): never in a query
# parameter either.
_CONTROL = CONTROL_CHARACTERS
DUPLICATE_OF = {"ru": "Дубликат обращения {id}", "en": "Duplicate of request {id}"}


def present_params(data):
    """A QueryDict as {name: [values]} without empty values: the spec treats an empty parameter as absent."""
    result = {}
    for key, values in data.lists():
        kept = [v for v in values if not isinstance(v, str) or v.strip()]
        if kept:
            result[key] = kept
    return result


def language(request):
    """The answer's language: the `locale` parameter (ru, en, en_US, ...), else Accept-Language, else the city's
    default language (LANGUAGE_CODE), each if content exists in it; else English."""
    wanted = request.query_params.get("locale", "")
    if not wanted and request.method == "POST":
        wanted = request.POST.get("locale", "")
    for candidate in (wanted, getattr(request, "LANGUAGE_CODE", "")):
        prefix = candidate.strip().lower()[:2]
        if prefix in LANGUAGES:
            return prefix
    return default_content_language()


def data_language(request):
    """The language of the city's translated data (service names, groups, questions) in an answer: the `locale`
    parameter (de, pt_BR ...) or else Accept-Language, if it is one of the configured languages (or its general
    language is), else the city's default language. Missing values fall back to the default's (translated)."""
    wanted = request.query_params.get("locale", "")
    if not wanted and request.method == "POST":
        wanted = request.POST.get("locale", "")
    configured = configured_languages()
    for candidate in (wanted, getattr(request, "LANGUAGE_CODE", "")):
        code = candidate.strip().lower().replace("_", "-")
        for option in (code, code.split("-")[0]):
            if option and option in configured:
                return option
    return default_language()


def w3c_datetime(value):
    return timezone.localtime(value).isoformat(timespec="seconds") if value else None


def public_text(value, lang=None):
    """Free text for public output: None if empty, and never with a tracking code or key in it, however spelt
    (complaints.tracking.redact)."""
    if not value:
        return None
    return redact(value, content_language(lang))


# ---- input fields -----------------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.STR)
class Text(serializers.CharField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if _CONTROL.search(value):
            raise serializers.ValidationError("must not contain control characters.")
        return value


@extend_schema_field(OpenApiTypes.DOUBLE)
class Coordinate(serializers.Field):
    """A latitude or longitude in degrees (WGS84): a finite number within its range."""

    def __init__(self, limit, **kwargs):
        self.limit = limit
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            value = float(str(data).strip())
        except ValueError:
            raise serializers.ValidationError(f"“{str(data)[:40]}” is not a number.") from None
        if not math.isfinite(value):
            raise serializers.ValidationError("must be a finite number.")
        if not -self.limit <= value <= self.limit:
            raise serializers.ValidationError(f"must be between -{self.limit} and {self.limit} degrees, got {value:g}.")
        return value


# PostgreSQL's timestamptz takes offsets up to ±15:59:59; no time zone on Earth is further from UTC than +14:00.
OFFSET_MAX = timedelta(hours=15, minutes=59, seconds=59)


def parse_w3c_datetime(text):
    """The one parser of every Open311 date parameter: ISO 8601 -> an aware datetime, or ValidationError.

    A date alone means its start, local time; a date-time without a zone is local time. An offset must be one a
    time zone can have (within ±15:59), and the moment must lie in the calendar (years 1 to 9999).
    """
    text = str(text).strip()
    try:
        # Python's parser takes a trailing NUL, and reads 5,000 digits as a date: neither is one.
        if len(text) > 64 or not text.isascii() or _CONTROL.search(text):
            raise ValueError(text)
        moment = parse_datetime(text)
        if moment is None and (day := parse_date(text)) is not None:
            moment = datetime.combine(day, time())
    except ValueError:  # well formed but impossible, e.g. 2026-02-30 or an offset of 24 hours
        moment = None
    if moment is None:
        raise serializers.ValidationError(
            f"“{text[:40]}” is not an ISO 8601 date-time, e.g. 2026-11-01T00:00:00+03:00.")
    if timezone.is_naive(moment):
        try:
            moment = timezone.make_aware(moment)
        except (OverflowError, ValueError):
            raise serializers.ValidationError(f"“{text[:40]}” is outside the calendar.") from None
    if abs(moment.utcoffset()) > OFFSET_MAX:
        raise serializers.ValidationError(
            f"the time-zone offset of “{text[:40]}” is beyond ±15:59: no time zone is that far from UTC.")
    return moment


@extend_schema_field(OpenApiTypes.DATETIME)
class W3CDateTime(serializers.Field):
    """ISO 8601 date-time (a zone is expected; a date alone means its start, local time): parse_w3c_datetime."""

    def to_internal_value(self, data):
        return parse_w3c_datetime(data)


@extend_schema_field(OpenApiTypes.STR)
class CommaList(serializers.Field):
    def __init__(self, choices=None, **kwargs):
        self.choices = choices
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        items = [item.strip() for item in str(data).split(",") if item.strip()]
        if _CONTROL.search(str(data)):
            raise serializers.ValidationError("must not contain control characters.")
        if self.choices:
            wrong = [item for item in items if item not in self.choices]
            if wrong:
                raise serializers.ValidationError(f"“{wrong[0][:40]}” is not one of {', '.join(self.choices)}.")
        return items


@extend_schema_field(OpenApiTypes.STR)
class RequestIdList(CommaList):
    """Comma-separated service_request_ids ("12,345") -> complaint pks. Anything else is refused (400) rather than
    ignored, so a client still sending the old ids (tracking codes) learns it at once; the value is not echoed."""

    def to_internal_value(self, data):
        items = super().to_internal_value(data)
        if len(items) > PAGE_SIZE_MAX:
            raise serializers.ValidationError(f"at most {PAGE_SIZE_MAX} ids at once.")
        ids = [parse_request_id(item) for item in items]
        if None in ids:
            raise serializers.ValidationError(
                "must be request ids separated by commas, e.g. 123,456 (the service_request_id of a request).")
        return ids


# ---- input serializers ------------------------------------------------------------------------------------


class FormSerializer(serializers.Serializer):
    """Reads a QueryDict. A list parameter (comma-separated) may also be repeated: every value counts
    (`status=open&status=closed` is `status=open,closed`). A single-valued parameter sent twice with different values
    is a 400, never a silent choice of one. Empty values count as absent."""

    @classmethod
    def from_params(cls, data, **kwargs):
        params = present_params(data)
        serializer = cls(data={}, **kwargs)
        fields = serializer.fields.values()  # the instance's own fields (DRF builds them once per instance)
        lists = {f.field_name for f in fields if isinstance(f, CommaList)}
        known = {f.field_name for f in fields}
        single = {}
        for key, values in params.items():
            if key in lists:
                single[key] = ",".join(str(v) for v in values)
            elif key in known and len(set(values)) > 1:
                raise serializers.ValidationError({key: "was sent more than once with different values: send it "
                                                        "once."})
            else:
                single[key] = values[-1]
        serializer.initial_data = single
        return serializer, params


class RequestCreateInput(FormSerializer):
    """A POST's parameters. The text fields are read as they come: complaint_create checks them (their lengths, the
    characters in them, the e-mail address), and open311.errors answers its refusals as the spec's 400s."""

    service_code = serializers.CharField(max_length=64)
    lat = Coordinate(90, required=False)
    long = Coordinate(180, required=False)
    address_string = serializers.CharField(required=False)
    address_id = Text(max_length=100, required=False)  # not kept: geocoding by address id is not offered
    description = serializers.CharField(required=False)
    email = serializers.CharField(required=False)
    first_name = serializers.CharField(required=False)
    last_name = serializers.CharField(required=False)
    phone = serializers.CharField(required=False)
    device_id = serializers.CharField(required=False)
    account_id = serializers.CharField(required=False)
    # A photo the integrator hosts (the spec's field): stored and shown back, never fetched. complaints checks it.
    media_url = serializers.CharField(required=False)
    media = serializers.ListField(child=serializers.FileField(allow_empty_file=True), required=False,
                                  error_messages={"not_a_list": "must be a file uploaded as multipart/form-data."})
    jurisdiction_id = serializers.CharField(required=False)  # one jurisdiction: ignored, as the spec allows
    # Our extension: the registry facility the request is about (it must cover the point or lie within the
    # service's radius: complaints.validation.clean_facility, a 400 otherwise).
    facility_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)

    @classmethod
    def from_request(cls, request, **kwargs):
        serializer, params = cls.from_params(request.POST, **kwargs)
        serializer.initial_data["attributes"] = attributes_from_params(params)
        # Our extension: photos uploaded as `media` files (multipart); complaint_create checks and re-encodes them.
        if request.FILES.getlist("media"):
            serializer.initial_data["media"] = request.FILES.getlist("media")
        return serializer

    def validate_service_code(self, code):
        # With its attributes, which complaint_create checks the answers against; reused while the catalogue's
        # change stamp (read with the key: context["catalogue_version"]) stays the same.
        category = open311_service_current(code, self.context.get("catalogue_version"))
        if category is None:
            raise serializers.ValidationError(f"unknown service_code “{code}”: see services.json for the list.")
        return category

    def complaint_fields(self):
        """The validated input as complaints.services.complaint_create's arguments."""
        data = self.validated_data
        contact = ("email", "phone", "first_name", "last_name", "device_id", "account_id", "address_string",
                   "media_url")
        return {"category": data["service_code"], "point": (data["long"], data["lat"]),
                "description": data.get("description", ""), "attributes": data["attributes"],
                "photos": data.get("media", ()), "facility": data.get("facility_id"),
                **{name: data.get(name, "") for name in contact}}

    def validate(self, data):
        data["attributes"] = self.initial_data.get("attributes", {})
        has_lat, has_long = "lat" in data, "long" in data
        if not (has_lat and has_long):
            if has_lat or has_long:
                raise serializers.ValidationError("lat and long must be sent together.")
            if data.get("address_string", "").strip():
                return self._located(data)
            if data.get("address_id"):
                raise serializers.ValidationError("address_id is not looked up here: send address_string, or lat "
                                                  "and long.")
            raise serializers.ValidationError("a location is required: send lat and long, or address_string.")
        return data

    @staticmethod
    def _located(data):
        """address_string without lat/long: located from the registry's own addresses and names, the way the
        residents' search box finds them (facilities.search); the match's point is used, its address stored."""
        text = data["address_string"]
        place = place_for_address(text)
        if place is None:
            raise serializers.ValidationError({"address_string": f"no address or place in the city matches "
                                                                 f"“{normalise_query(text)[:100]}”: send lat and "
                                                                 f"long, or a fuller address."})
        data["lat"], data["long"], data["address_string"] = place.lat, place.lon, place.label
        return data


@extend_schema_field({"type": "string", "format": "binary"})
class PhotoFile(serializers.FileField):
    """A photo file part of a multipart body (for the OpenAPI schema: a file, not a URL)."""


class RequestCreateForm(RequestCreateInput):
    """The POST body as the OpenAPI schema describes it (RequestCreateInput reads it; the key and the point are read
    by the view and by validate(), so they are declared here). `attribute[CODE]` fields answer the service's
    attributes: one value, or `attribute[CODE][]` repeated for a multivaluelist."""

    api_key = serializers.CharField(help_text="the key the city issued to the integrator")
    lat = Coordinate(90, help_text="WGS84 latitude, -90 to 90")
    long = Coordinate(180, help_text="WGS84 longitude, -180 to 180")
    locale = serializers.ChoiceField(choices=LANGUAGES, required=False, help_text="language of service_notice")
    media = None  # files travel in multipart bodies only


class RequestCreateMultipart(RequestCreateForm):
    media = serializers.ListField(child=PhotoFile(), required=False, max_length=5,
                                  help_text="photos (JPEG, PNG or WebP): our extension")


class ErrorOutput(serializers.Serializer):
    """One error of the spec's list: the HTTP status and a sentence naming what was wrong."""

    code = serializers.IntegerField()
    description = serializers.CharField()


class EndpointOutput(serializers.Serializer):
    specification = serializers.CharField()
    url = serializers.CharField()
    changeset = serializers.CharField()
    type = serializers.CharField()
    formats = serializers.ListField(child=serializers.CharField())


class DiscoveryOutput(serializers.Serializer):
    changeset = serializers.CharField()
    contact = serializers.CharField()
    key_service = serializers.CharField()
    endpoints = EndpointOutput(many=True)


def attributes_from_params(params):
    """attribute[CODE]=v and attribute[CODE][]=v1&attribute[CODE][]=v2 -> {CODE: "v" or [v1, v2]}."""
    attributes = {}
    for key, values in params.items():
        if not key.startswith("attribute"):
            continue
        match = _ATTRIBUTE_KEY.match(key)
        if not match:
            raise serializers.ValidationError(
                {key[:80]: "malformed attribute field: use attribute[CODE] or attribute[CODE][]."})
        code, is_list = match.group(1), bool(match.group(2))
        if any(not isinstance(v, str) for v in values):  # complaints.validation checks what the text holds
            raise serializers.ValidationError({key[:80]: "must be text."})
        previous = attributes.get(code)
        if previous is None:
            attributes[code] = values if is_list or len(values) > 1 else values[0]
        else:  # both forms sent for one code: keep every value
            attributes[code] = (previous if isinstance(previous, list) else [previous]) + values
    return attributes


class RequestsQueryInput(FormSerializer):
    service_request_id = RequestIdList(required=False)
    service_code = CommaList(required=False)
    start_date = W3CDateTime(required=False)
    end_date = W3CDateTime(required=False)
    status = CommaList(choices=("open", "closed"), required=False)
    # Extensions.
    updated_after = W3CDateTime(required=False)
    updated_before = W3CDateTime(required=False)
    lat = Coordinate(90, required=False)
    long = Coordinate(180, required=False)
    radius = serializers.FloatField(min_value=1, max_value=RADIUS_MAX_M, required=False)
    page = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=PAGE_SIZE_MAX, required=False, default=PAGE_SIZE_MAX)

    def search_arguments(self):
        """The validated query as selectors.open311_request_search's arguments."""
        data = self.validated_data
        return {"service_request_id": data.get("service_request_id", ()), "service_code": data.get("service_code", ()),
                "status": data.get("status", ()), "requested": window(data),
                "updated_after": data.get("updated_after"), "updated_before": data.get("updated_before"),
                "near": (data["long"], data["lat"], data["radius"]) if "lat" in data else None,
                "page": data["page"], "page_size": data["page_size"]}

    def validate_radius(self, value):
        if not math.isfinite(value):
            raise serializers.ValidationError("must be a finite number of metres.")
        return value

    def validate(self, data):
        if ("lat" in data) != ("long" in data):
            raise serializers.ValidationError("lat and long must be sent together.")
        if "radius" in data and "lat" not in data:
            raise serializers.ValidationError("radius needs lat and long.")
        if "lat" in data:
            data.setdefault("radius", 1000.0)
        window(data)  # raises when the range is wrong
        return data


def window(data):
    """The requested_datetime range: start_date/end_date, at most 90 days; by default the last 90 days.

    The default applies only when no date of any kind is asked for: `updated_after`/`updated_before` alone
    search every request (a client syncing changes must see old requests that changed recently).
    """
    start, end = data.get("start_date"), data.get("end_date")
    if start and end:
        if end < start:
            raise serializers.ValidationError("end_date is before start_date.")
        if end - start > MAX_WINDOW:
            raise serializers.ValidationError("start_date and end_date may not span more than 90 days.")
        return start, end
    try:
        if start:
            return start, start + MAX_WINDOW
        if end:
            return end - MAX_WINDOW, end
    except OverflowError:
        message = ("start_date: the default window, 90 days from it, ends past 9999-12-31: send end_date too."
                   if start else
                   "end_date: the default window, 90 days up to it, starts before 0001-01-01: send start_date too.")
        raise serializers.ValidationError(message) from None
    if data.get("updated_after") or data.get("updated_before"):
        return None, None
    now = timezone.now()
    return now - MAX_WINDOW, now


class UpdatesQueryInput(FormSerializer):
    start_date = W3CDateTime(required=False)
    end_date = W3CDateTime(required=False)
    page = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=PAGE_SIZE_MAX, required=False, default=PAGE_SIZE_MAX)

    def validate(self, data):
        if data.get("start_date") and data.get("end_date") and data["end_date"] < data["start_date"]:
            raise serializers.ValidationError("end_date is before start_date.")
        return data


# ---- output serializers -----------------------------------------------------------------------------------


class LocalizedSerializer(serializers.Serializer):
    def pick(self, obj, field):
        """A translated field (obj.<field>_i18n) in the answer's data language (data_language), else the default
        language's; a field the service writes in two languages (explanation_ru, _en) in the answer's language."""
        values = getattr(obj, f"{field}_i18n", None)
        if values is not None:
            return translated(values, self.data_lang) or None
        return getattr(obj, f"{field}_{self.lang}") or None

    @property
    def data_lang(self):
        return self.context.get("data_lang") or default_language()

    @property
    def lang(self):
        return self.context.get("lang") or default_content_language()

    def text(self, value):
        return public_text(value, self.lang)


@extend_schema_field(OpenApiTypes.STR)
class RequestId(serializers.Field):
    """The Open311 service_request_id: the complaint's primary key as a string (never its tracking code)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("source", "pk")
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value):
        return str(value)


class ServiceOutput(LocalizedSerializer):
    service_code = serializers.CharField(source="code")
    service_name = serializers.SerializerMethodField()
    description = serializers.SerializerMethodField()
    metadata = serializers.SerializerMethodField()
    type = serializers.SerializerMethodField()
    keywords = serializers.SerializerMethodField()
    group = serializers.SerializerMethodField()

    def get_service_name(self, obj) -> str | None:
        return self.pick(obj, "name")

    def get_description(self, obj) -> str | None:
        return self.pick(obj, "description")

    def get_metadata(self, obj) -> bool:
        return bool(obj.attributes.all())

    def get_type(self, obj) -> str:
        return "realtime"  # a POST answers with the service_request_id at once

    def get_keywords(self, obj) -> str | None:
        return obj.keywords or None

    def get_group(self, obj) -> str | None:
        return self.pick(obj, "group")


class AttributeOutput(LocalizedSerializer):
    variable = serializers.BooleanField()
    code = serializers.CharField()
    datatype = serializers.CharField()
    required = serializers.BooleanField()
    datatype_description = serializers.SerializerMethodField()
    order = serializers.IntegerField()
    description = serializers.SerializerMethodField()
    values = serializers.SerializerMethodField()

    def get_datatype_description(self, obj) -> str | None:
        return obj.datatype_description or None

    def get_description(self, obj) -> str | None:
        return self.pick(obj, "description")

    def get_values(self, obj) -> list[dict[str, str]]:
        return [{"key": str(v["key"]), "name": translated(v.get("name_i18n") or {}, self.data_lang) or str(v["key"])}
                for v in obj.values or [] if isinstance(v, dict) and "key" in v]


class ServiceDefinitionOutput(serializers.Serializer):
    service_code = serializers.CharField(source="code")
    attributes = serializers.SerializerMethodField()

    @extend_schema_field(AttributeOutput(many=True))
    def get_attributes(self, obj):
        return AttributeOutput(obj.attributes.all(), many=True, context=self.context).data


class RequestCreatedOutput(LocalizedSerializer):
    """The spec: service_request_id (no token, since it is returned at once), service_notice, account_id."""

    service_request_id = RequestId()
    service_notice = serializers.SerializerMethodField()
    account_id = serializers.SerializerMethodField()

    def get_service_notice(self, obj) -> str | None:
        return self.text(self.pick(obj.decision, "explanation"))

    def get_account_id(self, obj) -> str | None:
        return None  # the city keeps no accounts for integrators' users


class RequestOutput(LocalizedSerializer):
    """A public request. Never carries email, phone, names, device_id or account_id."""

    service_request_id = RequestId()
    status = serializers.SerializerMethodField()
    status_notes = serializers.SerializerMethodField()  # annotated by the selector: the latest answer
    service_name = serializers.SerializerMethodField()
    service_code = serializers.CharField(source="category.code")
    description = serializers.SerializerMethodField()
    # The authority, by its own name: a department's name may contain the authority's in another form (issue 12).
    agency_responsible = serializers.CharField(source="department.authority.name")
    service_notice = serializers.SerializerMethodField()
    requested_datetime = serializers.SerializerMethodField()
    updated_datetime = serializers.SerializerMethodField()
    expected_datetime = serializers.SerializerMethodField()
    address = serializers.SerializerMethodField()
    address_id = serializers.SerializerMethodField()
    zipcode = serializers.SerializerMethodField()
    lat = serializers.SerializerMethodField()
    long = serializers.SerializerMethodField()
    media_url = serializers.SerializerMethodField()

    def get_status(self, obj) -> str:
        return "closed" if obj.state in CLOSED_STATES else "open"

    def get_status_notes(self, obj) -> str | None:
        return self.text(obj.status_notes)

    def get_service_name(self, obj) -> str | None:
        return self.pick(obj.category, "name")

    def get_description(self, obj) -> str | None:
        return self.text(obj.description)

    def get_service_notice(self, obj) -> str | None:
        return self.text(self.pick(obj.decision, "explanation"))

    def get_requested_datetime(self, obj) -> str:
        return w3c_datetime(obj.submitted_at)

    def get_updated_datetime(self, obj) -> str | None:
        return w3c_datetime(obj.updated_at)

    def get_expected_datetime(self, obj) -> str:
        return w3c_datetime(obj.deadline)

    def get_address(self, obj) -> str | None:
        return self.text(obj.address_string)

    def get_address_id(self, obj) -> str | None:
        return None

    def get_zipcode(self, obj) -> str | None:
        return None

    def get_lat(self, obj) -> float:
        return obj.location.y

    def get_long(self, obj) -> float:
        return obj.location.x

    def get_media_url(self, obj) -> str | None:
        """The first photo uploaded with it (served by us), else the `media_url` the integrator gave."""
        return media_url(self.context.get("request"), obj.photo_id) or obj.media_url or None


class TokenOutput(serializers.Serializer):
    service_request_id = RequestId()
    token = serializers.CharField()


class UpdateOutput(LocalizedSerializer):
    """One line of the FixMyStreet `servicerequestupdates` extension: a public status change."""

    update_id = serializers.CharField(source="id")
    service_request_id = RequestId(source="complaint_id")
    status = serializers.SerializerMethodField()
    updated_datetime = serializers.SerializerMethodField()
    description = serializers.SerializerMethodField()
    media_url = serializers.SerializerMethodField()
    external_status_code = serializers.CharField(source="to_state")

    def get_status(self, obj) -> str:
        return fixmystreet_status(obj.to_state)

    def get_updated_datetime(self, obj) -> str | None:
        return w3c_datetime(obj.at)

    def get_description(self, obj) -> str | None:
        if obj.kind == ComplaintEvent.Kind.DUPLICATE and obj.duplicate_of_id:
            return DUPLICATE_OF.get(self.lang, DUPLICATE_OF["en"]).format(id=obj.duplicate_of_id)
        return self.text(obj.public_text)

    def get_media_url(self, obj) -> str | None:
        return media_url(self.context.get("request"), obj.photo_id)


# Our states as the statuses FixMyStreet's Open311 update sync understands; the exact state is in
# external_status_code.
FIXMYSTREET_STATUS = {"in_progress": "in_progress", "answered": "action_scheduled", "resolved": "fixed",
                      "duplicate": "duplicate"}


def fixmystreet_status(state):
    return FIXMYSTREET_STATUS.get(state, "closed" if state in CLOSED_STATES else "open")


def media_url(request, photo_id):
    """The absolute URL at which the photo is served (complaints.views.photo), or None."""
    if not photo_id:
        return None
    url = reverse("complaints:photo", kwargs={"photo_id": photo_id})
    return request.build_absolute_uri(url) if request is not None else url
