"""The Open311 searches, on top of complaints.selectors.complaints_public() (hidden complaints never show)."""
import math

from django.contrib.gis.geos import Point
from django.db.models import BooleanField, OuterRef, Subquery
from django.db.models.expressions import RawSQL

from complaints.models import CLOSED_STATES, Answer, ComplaintEvent, Photo, State
from complaints.selectors import complaints_public
from complaints.tracking import normalize_tracking_code

METRES_PER_DEGREE = 111_320  # of latitude, and of longitude at the equator

# History events that are status changes a subscriber should hear about (creation and routing are not).
UPDATE_KINDS = [ComplaintEvent.Kind.STATE, ComplaintEvent.Kind.ANSWER, ComplaintEvent.Kind.TRANSFER,
                ComplaintEvent.Kind.DUPLICATE, ComplaintEvent.Kind.CONFIRMED, ComplaintEvent.Kind.REOPENED]


def open311_requests():
    """Public complaints with what a request shows: latest answer as status_notes, first photo."""
    latest_answer = Answer.objects.filter(complaint=OuterRef("pk")).order_by("-created_at", "-id")
    first_photo = Photo.objects.filter(complaint=OuterRef("pk"), answer__isnull=True).order_by("created_at", "id")
    return (complaints_public().select_related("decision")
            .annotate(status_notes=Subquery(latest_answer.values("text")[:1]),
                      photo_path=Subquery(first_photo.values("file")[:1])))


def open311_request_search(*, service_request_id=(), service_code=(), status=(), requested=(None, None),
                           updated_after=None, updated_before=None, near=None, page=1, page_size=1000):
    """GET requests: `service_request_id` overrides every other argument, as the spec says."""
    requests = open311_requests().order_by("-submitted_at", "-id")
    if service_request_id:
        codes = {normalize_tracking_code(code) for code in service_request_id} - {""}
        return requests.filter(tracking_code__in=codes)[:page_size]
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
    # A box in degrees that surely holds the circle lets the GiST index on `location` pick the candidates;
    # geography then measures metres.
    degrees = radius_m / (METRES_PER_DEGREE * max(math.cos(math.radians(lat)), 0.01)) * 1.01
    within = RawSQL("ST_DWithin(complaints_complaint.location::geography, "
                    "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s)", (lon, lat, radius_m),
                    output_field=BooleanField())
    return queryset.filter(location__dwithin=(Point(lon, lat, srid=4326), degrees)).filter(within)


def open311_request(service_request_id):
    code = normalize_tracking_code(service_request_id)
    return open311_requests().filter(tracking_code=code).first() if code else None


def open311_token(token):
    if not token:
        return None
    return complaints_public().select_related(None).filter(token=token).only("tracking_code", "token").first()


def open311_updates(*, start_date=None, end_date=None, page=1, page_size=1000):
    """Public status changes of public complaints, oldest first (the FixMyStreet `servicerequestupdates` feed).

    Each carries `public_text` (the answer, the resident's reason for reopening, a transfer's reason) and, for an
    answer, `photo_path` of its photo.
    """
    events = (ComplaintEvent.objects.filter(public=True, kind__in=UPDATE_KINDS)
              .exclude(to_state=State.HIDDEN).exclude(complaint__state=State.HIDDEN)
              .select_related("complaint").only("id", "at", "kind", "to_state", "reason", "complaint",
                                                "complaint__tracking_code")
              .order_by("at", "id"))
    if start_date:
        events = events.filter(at__gte=start_date)
    if end_date:
        events = events.filter(at__lte=end_date)
    offset = (page - 1) * page_size
    events = list(events[offset:offset + page_size])
    _attach_answer_photos(events)
    return events


def _attach_answer_photos(events):
    """An answer's event is written just before the answer, in one transaction: pair them by complaint and order."""
    answer_events = [e for e in events if e.kind == ComplaintEvent.Kind.ANSWER]
    for event in events:
        event.public_text, event.photo_path = event.reason, None
    if not answer_events:
        return
    complaint_ids = {e.complaint_id for e in answer_events}
    answers = {}
    for answer in Answer.objects.filter(complaint_id__in=complaint_ids).order_by("created_at", "id"):
        answers.setdefault(answer.complaint_id, []).append(answer)
    photos = dict(Photo.objects.filter(answer__complaint_id__in=complaint_ids).order_by("-id")
                  .values_list("answer_id", "file"))
    all_answer_events = (ComplaintEvent.objects.filter(complaint_id__in=complaint_ids, kind=ComplaintEvent.Kind.ANSWER)
                         .order_by("at", "id").values_list("id", "complaint_id"))
    position, seen = {}, {}  # the n-th answer event of a complaint goes with its n-th answer
    for event_id, complaint_id in all_answer_events:
        position[event_id] = seen.get(complaint_id, 0)
        seen[complaint_id] = position[event_id] + 1
    for event in answer_events:
        complaint_answers = answers.get(event.complaint_id, [])
        if position[event.id] < len(complaint_answers):
            event.photo_path = photos.get(complaint_answers[position[event.id]].id)
