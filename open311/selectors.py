"""The Open311 searches, on top of complaints.selectors.complaints_public() (hidden complaints never show).

A request's Open311 `service_request_id` is the complaint's primary key as a decimal string. The tracking code is
the resident's secret key (whoever holds it may confirm or deny the department's answer), so it is never looked up
or shown here.
"""
import re

from django.db.models import BooleanField, F, OuterRef, Subquery
from django.db.models.expressions import RawSQL

from complaints.models import CLOSED_STATES, Answer, ComplaintEvent, Photo, State
from complaints.selectors import complaints_public
from routing.models import Category

# Never read for public output: what a resident told about themselves, and the resident's key.
PRIVATE_FIELDS = ("email", "phone", "first_name", "last_name", "device_id", "account_id", "tracking_code")
_REQUEST_ID = re.compile(r"[1-9][0-9]*")  # canonical decimal, ASCII digits only
_ID_MAX = 2 ** 63 - 1  # bigint


def parse_request_id(raw):
    """A service_request_id as the complaint's pk: an int, or None if `raw` is not a request id at all.

    Only the canonical form ("123", not "0123", "+123" or " 123") names a request, so every request has exactly
    one id. A number beyond the bigint range has the form of an id and names nothing: -1.
    """
    raw = str(raw)
    if not _REQUEST_ID.fullmatch(raw):
        return None
    if len(raw) > len(str(_ID_MAX)):
        return -1
    value = int(raw)
    return value if value <= _ID_MAX else -1

# History events that are status changes a subscriber should hear about (creation and routing are not).
UPDATE_KINDS = [ComplaintEvent.Kind.STATE, ComplaintEvent.Kind.ANSWER, ComplaintEvent.Kind.TRANSFER,
                ComplaintEvent.Kind.DUPLICATE, ComplaintEvent.Kind.CONFIRMED, ComplaintEvent.Kind.REOPENED]


def open311_service(code):
    """The active category with this service_code, its attributes loaded (in their order); or None."""
    return Category.objects.filter(code=code, active=True).prefetch_related("attributes").first()


# What open311_service_current() read, per process: code -> (the catalogue's change stamp read before, category or
# None). The stamp (migration open311 0002) changes with every write of a category or an attribute, whoever makes
# it (the admin, an importer's SQL, another process), and the POST reads it in the statement that checks its key:
# so a POST never validates against a catalogue older than the one it would have read itself, on whichever app
# server it lands (tests/multiserver).
_services = {}
SERVICE_CACHE_MAX = 1000


def open311_service_current(code, version):
    """open311_service(code), reused while the catalogue's change stamp is still `version` (None: read it)."""
    if version is None:
        return open311_service(code)
    cached = _services.get(code)
    if cached is not None and cached[0] == version:
        return cached[1]
    category = open311_service(code)  # read after the stamp: as new as the stamp says, or newer
    if len(_services) >= SERVICE_CACHE_MAX:  # codes that are not services: never keep many of them
        _services.clear()
    _services[code] = (version, category)
    return category


def open311_requests():
    """Public complaints with what a request shows: latest answer as status_notes, first photo."""
    latest_answer = Answer.objects.published().filter(complaint=OuterRef("pk")).order_by("-created_at", "-id")
    first_photo = Photo.objects.filter(complaint=OuterRef("pk"), answer__isnull=True).order_by("created_at", "id")
    return (complaints_public().select_related("decision").defer(*PRIVATE_FIELDS)
            .annotate(status_notes=Subquery(latest_answer.values("text")[:1]),
                      photo_id=Subquery(first_photo.values("id")[:1])))


def open311_request_search(*, service_request_id=(), service_code=(), status=(), requested=(None, None),
                           updated_after=None, updated_before=None, near=None, page=1, page_size=1000):
    """GET requests: `service_request_id` (complaint ids, as ints) overrides every other argument, as the spec
    says."""
    requests = open311_requests().order_by("-submitted_at", "-id")
    if service_request_id:
        return requests.filter(pk__in=set(service_request_id))[:page_size]
    start, end = requested
    if start:
        requests = requests.filter(submitted_at__gte=start)
    if end:
        requests = requests.filter(submitted_at__lte=end)
    if service_code:
        requests = requests.filter(category__code__in=service_code)
    if len(set(status)) == 1:  # both open and closed = no filter
        closed = {"state__in": CLOSED_STATES}
        requests = requests.filter(**closed) if status[0] == "closed" else requests.exclude(**closed)
    if updated_after:
        requests = requests.filter(updated_at__gte=updated_after)
    if updated_before:
        requests = requests.filter(updated_at__lte=updated_before)
    if near:
        requests = within_metres(requests, *near)
    offset = (page - 1) * page_size
    return requests[offset:offset + page_size]


def within_metres(queryset, lon, lat, radius_m):
    """Complaints within `radius_m` metres (true distance on the spheroid) of a point."""
    # A box in degrees that surely holds the circle (the registry's rule, facilities_degree_window) lets the GiST
    # index on `location` pick the candidates; geography then measures metres.
    within = RawSQL("complaints_complaint.location && ST_Expand(ST_SetSRID(ST_MakePoint(%s, %s), 4326), "
                    "facilities_degree_window(%s, %s)) AND ST_DWithin(complaints_complaint.location::geography, "
                    "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s)",
                    (lon, lat, radius_m, lat, lon, lat, radius_m), output_field=BooleanField())
    return queryset.filter(within)


def open311_request(service_request_id):
    """The public request with this id (a string from the URL), or None: unknown, hidden, or not an id."""
    pk = parse_request_id(service_request_id)
    return open311_requests().filter(pk=pk).first() if pk else None


def open311_token(token):
    if not token:
        return None
    return complaints_public().select_related(None).filter(token=token).only("id", "token").first()


def open311_updates(*, start_date=None, end_date=None, page=1, page_size=1000):
    """Public status changes of public complaints, oldest first (the FixMyStreet `servicerequestupdates` feed).

    Each carries `public_text` (the answer, the resident's reason for reopening, a transfer's reason), for an
    answer `photo_id` of its photo, and `duplicate_of_id` (the original of a complaint marked a duplicate: its
    event's stored reason is the original's tracking code, which is never shown).
    """
    events = (ComplaintEvent.objects.filter(public=True, kind__in=UPDATE_KINDS)
              .exclude(to_state=State.HIDDEN).exclude(complaint__state=State.HIDDEN)
              .only("id", "at", "kind", "to_state", "reason", "complaint")
              .annotate(duplicate_of_id=F("complaint__duplicate_of_id"))
              .order_by("at", "id"))
    if start_date:
        events = events.filter(at__gte=start_date)
    if end_date:
        events = events.filter(at__lte=end_date)
    offset = (page - 1) * page_size
    events = list(events[offset:offset + page_size])
    for event in events:
        # A duplicate's stored reason is the original's tracking code: never shown (the serializer names the
        # original by its id instead).
        event.public_text = None if event.kind == ComplaintEvent.Kind.DUPLICATE else event.reason
        event.photo_id = None
    _attach_answer_photos(events)
    return events


def _attach_answer_photos(events):
    """An answer's event is written just before the answer, in one transaction: pair them by complaint and order."""
    answer_events = [e for e in events if e.kind == ComplaintEvent.Kind.ANSWER]
    if not answer_events:
        return
    complaint_ids = {e.complaint_id for e in answer_events}
    answers = {}
    for answer in Answer.objects.published().filter(complaint_id__in=complaint_ids).order_by("created_at", "id"):
        answers.setdefault(answer.complaint_id, []).append(answer)
    photos = dict(Photo.objects.filter(answer__complaint_id__in=complaint_ids, answer__state="published").order_by("-id")
                  .values_list("answer_id", "id"))
    all_answer_events = (ComplaintEvent.objects.filter(complaint_id__in=complaint_ids, kind=ComplaintEvent.Kind.ANSWER)
                         .order_by("at", "id").values_list("id", "complaint_id"))
    position, seen = {}, {}  # the n-th answer event of a complaint goes with its n-th answer
    for event_id, complaint_id in all_answer_events:
        position[event_id] = seen.get(complaint_id, 0)
        seen[complaint_id] = position[event_id] + 1
    for event in answer_events:
        complaint_answers = answers.get(event.complaint_id, [])
        if position[event.id] < len(complaint_answers):
            event.photo_id = photos.get(complaint_answers[position[event.id]].id)
