"""Reads of complaints. Who may see and work which tickets is decided here and nowhere else."""
import datetime
import json
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from facilities.models import Department

from .models import CLOSED_STATES, DEADLINE_STATES, OPEN_STATES, Complaint, ComplaintEvent, State, Volunteer
from .tracking import normalize_tracking_code

DISPATCHERS_GROUP = "City dispatchers"


def complaints_public():
    """What residents and Open311 readers may see: everything but hidden complaints."""
    return (Complaint.objects.exclude(state=State.HIDDEN)
            .select_related("category", "department__authority"))


def overdue_q(now=None):
    """Still to be worked on (or its answer still in moderation), and past its deadline: the one rule of "overdue"
    (the staff lists, the scheduler's overdue marks)."""
    return Q(state__in=DEADLINE_STATES, deadline__lt=now or timezone.now())


def complaint_by_tracking_code(code):
    """The complaint with that tracking code (typed loosely by a resident), or None."""
    code = normalize_tracking_code(code)
    return complaints_public().filter(tracking_code=code).first() if code else None


def complaint_history(complaint, *, public_only=False):
    events = ComplaintEvent.objects.filter(complaint=complaint).select_related(
        "actor", "from_department__authority", "to_department__authority", "decision")
    return events.filter(public=True) if public_only else events


def is_dispatcher(user):
    """Superusers and the group "City dispatchers" work every department's tickets."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    # Asked several times per page (the scope, the nearby originals, the actions): once per user object, that is
    # per request, as Django keeps the user's permissions (a group change counts from the next request).
    if not hasattr(user, "_ourcity_dispatcher"):
        user._ourcity_dispatcher = user.groups.filter(name=DISPATCHERS_GROUP).exists()
    return user._ourcity_dispatcher


def departments_for_user(user):
    if is_dispatcher(user):
        return Department.objects.all()
    if not (user and user.is_authenticated and user.is_active):
        return Department.objects.none()
    return Department.objects.filter(staff=user)


def tickets_for_user(user):
    """The tickets a staff member works: their departments' (all of them for dispatchers), by deadline."""
    tickets = Complaint.objects.select_related("category", "department__authority").order_by("deadline", "id")
    if is_dispatcher(user):
        return tickets
    if not (user and user.is_authenticated and user.is_active):
        return tickets.none()
    return tickets.filter(department__staff=user)


def user_may_act(user, department_id):
    """May this user act on a complaint that lies with this department?"""
    return is_dispatcher(user) or departments_for_user(user).filter(pk=department_id).exists()


# Hand-ons measured (issue 11 §3): complaints.handons (handon_rates) owns the definition and the figures.


# --- the answer cycle (issue 10) ---------------------------------------------------------------------------

from .roles import MODERATE_PERMISSION, MODERATORS_GROUP  # noqa: E402,F401 - any user with the permission moderates


def is_moderator(user):
    """May this user publish or return departments' answers (every department's: the city's central team)?"""
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(MODERATE_PERMISSION))


def moderation_queue(user):
    """The answers waiting for a moderator, the oldest deadline first (nothing for anyone else)."""
    if not is_moderator(user):
        return Complaint.objects.none()
    return (Complaint.objects.filter(state=State.MODERATION)
            .select_related("category", "department__authority", "area").order_by("deadline", "id"))


def volunteer_user_for_email(email):
    """The user of the approved, active volunteer whose account has this e-mail address (any case), or None: the
    one rule by which a resident signed in by a mailed link (complaints.notify.signin_use) is that volunteer. None
    as well when two such accounts share the address (which of them would it be?). Only the volunteer's pages follow
    from it, never the account's other rights (staff or admin ones need its password)."""
    email = (email or "").strip()
    if not email:
        return None
    users = [v.user for v in Volunteer.objects.filter(approved=True, user__is_active=True, user__email__iexact=email)
             .select_related("user")[:2]]
    return users[0] if len(users) == 1 else None


def complaints_for_volunteer(user, *, now=None):
    """The complaints an approved volunteer may check: in their districts, answered (or resolved) within the last
    VOLUNTEER_RECENT_DAYS, not hidden; nothing for anyone else. The one scope of every volunteer page and check."""
    from .transitions import CHECKABLE

    if not (user and user.is_authenticated and user.is_active):
        return Complaint.objects.none()
    since = (now or timezone.now()) - datetime.timedelta(days=settings.VOLUNTEER_RECENT_DAYS)
    return (Complaint.objects.filter(state__in=CHECKABLE, answered_at__gte=since,
                                     area__in=Volunteer.objects.filter(user=user, approved=True)
                                     .values("districts"))
            .select_related("category", "department__authority", "area").order_by("-answered_at", "-id"))
# --- not reporting twice --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Nearby:
    """One nearby open complaint, with its public fields (read in the same statement: the API answers from these
    without a second query)."""
    complaint_id: int
    distance_m: float
    similarity: float  # of its description to the one given (0 without one)
    state: str = ""
    description: str = ""
    submitted_at: datetime.datetime | None = None
    lon: float = 0.0
    lat: float = 0.0
    service_code: str = ""
    service_name_i18n: dict | None = None


# Nearer than this many metres counts as "as near": within one band, the more similar description comes first.
NEARBY_BAND_M = 25
# With a scope (`among`), the nearest this many are looked at and those in the scope kept.
NEARBY_SCOPED_CANDIDATES = 100
NEARBY_SQL = """
    SELECT k.id, k.d, k.s, k.state, k.description, k.submitted_at, ST_X(k.location), ST_Y(k.location), k.code,
           k.name_i18n FROM (
        SELECT c.id, ST_Distance(c.location::geography, c.g::geography) AS d,
               CASE WHEN %(text)s = '' THEN 0 ELSE similarity(c.description, %(text)s) END AS s,
               c.state, c.description, c.submitted_at, c.location, k.code, k.name_i18n
        FROM (SELECT c.id, c.category_id, c.state, c.description, c.submitted_at, c.location, p.g
              FROM complaints_complaint c, (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS g) p
              WHERE c.state <> ALL(%(closed)s)
                AND c.location && ST_Expand(p.g, facilities_degree_window(%(radius)s, %(lat)s))
                AND (%(exclude)s::bigint IS NULL OR c.id <> %(exclude)s)
              -- a fence: the few complaints in the window come from the open ones' GiST index alone; left to
              -- itself the planner ANDs that bitmap with the category index's (a category's every complaint,
              -- 33,000 at 1M: 10 ms where the window's 30 rows take 0.2 ms)
              OFFSET 0) c
        JOIN routing_category k ON k.id = c.category_id
        WHERE (%(group)s::jsonb IS NULL OR k.group_i18n = %(group)s::jsonb)
    ) k
    WHERE k.d <= %(radius)s
    ORDER BY floor(k.d / %(band)s), k.s DESC, k.d, k.id
    LIMIT %(limit)s"""


def complaints_nearby(point, *, category=None, description="", radius_m=None, limit=None, exclude=None,
                      among=None):
    """The open complaints within radius_m metres of the point (settings.NEARBY_RADIUS_M), of the category's group
    when one is given: the five nearest (settings.NEARBY_LIMIT), by true distance on the spheroid, a description
    alike as the tie-break (pg_trgm similarity, within NEARBY_BAND_M). Open as Open311 says (an answered one too,
    while its resident may still dispute the answer): never hidden, duplicate or resolved ones. `exclude`: a complaint's own id; `among`: a queryset of complaints to choose from (a staff member's scope).

    The candidates come from the GiST index of open complaints' points (migration 0010) through the registry's
    degree window (facilities_degree_window), then are measured in metres; answers a list of Nearby."""
    lon, lat = (point.x, point.y) if hasattr(point, "x") else point
    radius = float(settings.NEARBY_RADIUS_M if radius_m is None else radius_m)
    params = {"lon": float(lon), "lat": float(lat), "radius": radius, "band": float(NEARBY_BAND_M),
              "closed": [str(s) for s in CLOSED_STATES], "group": json.dumps(category.group_i18n) if category else None,
              "text": (description or "")[:1000], "exclude": int(exclude) if exclude else None,
              "limit": int(settings.NEARBY_LIMIT if limit is None else limit)}
    if among is not None:  # the nearest of the scope: from the nearest candidates, those in it
        params["limit"] = NEARBY_SCOPED_CANDIDATES
    with connection.cursor() as cur:
        cur.execute(NEARBY_SQL, params)
        rows = cur.fetchall()
    if among is not None:
        allowed = set(among.filter(id__in=[r[0] for r in rows]).values_list("id", flat=True))
        rows = [r for r in rows if r[0] in allowed][:int(settings.NEARBY_LIMIT if limit is None else limit)]
    return [Nearby(complaint_id=r[0], distance_m=float(r[1]), similarity=float(r[2]), state=r[3],
                   description=r[4] or "", submitted_at=r[5], lon=float(r[6]), lat=float(r[7]), service_code=r[8],
                   service_name_i18n=r[9] if isinstance(r[9], dict) else json.loads(r[9] or "{}"))
            for r in rows]
