"""Reads of complaints. Who may see and work which tickets is decided here and nowhere else."""
import datetime
import json
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Q
from django.utils import timezone

from facilities.models import Department
from facilities.selectors import finest_level

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


# --- hand-ons measured (issue 11 §3) ---------------------------------------------------------------------------
# The one owner of these figures: the staff workspace, the public statistics (web.selectors, through the scheduler's
# StatisticsSnapshot), their CSV files and the registry's hand-on queue read them here. Definitions (docs/statistics.md):
# - the complaints counted: every complaint but hidden ones and duplicates, by the month it was submitted in (the
#   city's time zone);
# - handed on (forwarded): it has at least one `transfer` event, a department handing it on (staff's "hand on",
#   complaints.services.complaint_transfer); a re-route after a registry change or a change of category is not a
#   hand-on. Forwarding rate = handed on / complaints (Mark-a-Spot's measure);
# - resolved at first contact: it is resolved now, by the department it was first routed to, with no hand-on and
#   never reopened (no `reopened` event, reopen_count 0). First-contact resolution = resolved at first contact /
#   resolved;
# - its department: the one it was first routed to (the first event that names a department: the department it
#   came from, else the one it went to; with no such event, its current one); its facility type: that of the
#   facility its first routing decision named (the first `routed` event's, else the current decision's; none: no
#   facility decided); its category: the current one (after staff corrected it); its district: the complaint's
#   area if it is of the finest level (facilities.selectors.finest_level: the districts in the demo).
HANDON_DIMENSIONS = ("department", "category", "facility_type", "district")

_HANDON_SQL = """
WITH b AS (
    SELECT date_trunc('month', c.submitted_at AT TIME ZONE %(tz)s)::date AS month,
           coalesce(fe.department_id, c.department_id) AS department_id,
           c.category_id, ff.type_id AS facility_type_id,
           CASE WHEN a.level = %(district_level)s THEN a.id END AS district_id,
           h.forwarded,
           c.state = %(resolved)s AS resolved,
           c.state = %(resolved)s AND NOT h.forwarded AND NOT h.reopened AND c.reopen_count = 0
               AND c.department_id = coalesce(fe.department_id, c.department_id) AS first_contact
    FROM complaints_complaint c
    LEFT JOIN LATERAL (  -- the first department: where the first event that named a department found it or sent it
        SELECT coalesce(e.from_department_id, e.to_department_id) AS department_id FROM complaints_complaintevent e
        WHERE e.complaint_id = c.id AND (e.from_department_id IS NOT NULL OR e.to_department_id IS NOT NULL)
        ORDER BY e.at, e.id LIMIT 1) fe ON true
    LEFT JOIN LATERAL (  -- the first routing decision: the engine's first (the routed event), else the current one
        SELECT e.decision_id FROM complaints_complaintevent e
        WHERE e.complaint_id = c.id AND e.kind = 'routed' AND e.decision_id IS NOT NULL
        ORDER BY e.at, e.id LIMIT 1) fr ON true
    CROSS JOIN LATERAL (
        SELECT coalesce(bool_or(e.kind = 'transfer'), false) AS forwarded,
               coalesce(bool_or(e.kind = 'reopened'), false) AS reopened
        FROM complaints_complaintevent e WHERE e.complaint_id = c.id AND e.kind IN ('transfer', 'reopened')) h
    LEFT JOIN routing_routingdecision fd ON fd.id = coalesce(fr.decision_id, c.decision_id)
    LEFT JOIN facilities_facility ff ON ff.id = fd.facility_id
    LEFT JOIN facilities_adminarea a ON a.id = c.area_id
    WHERE c.state <> ALL(%(excluded)s) {where})
SELECT GROUPING(b.month), GROUPING(b.department_id), GROUPING(b.category_id), GROUPING(b.facility_type_id),
       GROUPING(b.district_id), b.month, b.department_id, b.category_id, b.facility_type_id, b.district_id,
       count(*), count(*) FILTER (WHERE b.forwarded), count(*) FILTER (WHERE b.resolved),
       count(*) FILTER (WHERE b.first_contact)
FROM b {scope}
GROUP BY GROUPING SETS ((), (b.month), (b.department_id), (b.category_id), (b.facility_type_id), (b.district_id),
                        (b.month, b.department_id), (b.month, b.category_id), (b.month, b.facility_type_id),
                        (b.month, b.district_id))
"""


@dataclass(frozen=True)
class HandonRow:
    """One line of the hand-on figures: `dimension` None (all the complaints counted) or one of HANDON_DIMENSIONS
    with `key` (that department's, category's, facility type's or district's id; None: no facility type, no
    district); `month` the first day of the month, None for the whole period."""

    dimension: str | None
    key: int | None
    month: date | None
    complaints: int
    forwarded: int
    resolved: int
    first_contact: int

    @property
    def forwarding_rate(self):
        """Handed on at least once / complaints (0..1), None for no complaint."""
        return self.forwarded / self.complaints if self.complaints else None

    @property
    def first_contact_rate(self):
        """Resolved at first contact / resolved (0..1), None when none is resolved."""
        return self.first_contact / self.resolved if self.resolved else None

    def as_list(self):
        """A JSON-ready list (StatisticsSnapshot keeps these); HandonRow.from_list reads it back."""
        return [self.dimension, self.key, self.month.isoformat() if self.month else None, self.complaints,
                self.forwarded, self.resolved, self.first_contact]

    @classmethod
    def from_list(cls, values):
        dimension, key, month, *counts = values
        return cls(dimension, key, date.fromisoformat(month) if month else None, *counts)


def handon_rates(*, departments=None, since=None, until=None, using=None):
    """The hand-on figures (forwarding rate, first-contact resolution; definitions above) over the complaints
    submitted in [since, until) (datetimes; None: no bound), as HandonRows: all of them, by month, by each of
    HANDON_DIMENSIONS, and by each of them by month, in one pass. `departments` (ids) limits it to the complaints
    first routed to those departments (a staff member's own: staff see only theirs); None: every department.
    `using`: a database alias (the public statistics read the replica)."""
    where, params = [], {"tz": timezone.get_current_timezone_name(), "resolved": State.RESOLVED.value,
                         "district_level": finest_level(using),
                         "excluded": [State.HIDDEN.value, State.DUPLICATE.value]}
    if since is not None:
        where.append("c.submitted_at >= %(since)s")
        params["since"] = since
    if until is not None:
        where.append("c.submitted_at < %(until)s")
        params["until"] = until
    scope = ""
    if departments is not None:
        scope = "WHERE b.department_id = ANY(%(departments)s)"
        params["departments"] = [int(d) for d in departments]
    sql = _HANDON_SQL.format(where="".join(f" AND {w}" for w in where), scope=scope)
    with connections[using or DEFAULT_DB_ALIAS].cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    out = []
    for r in rows:
        if not r[10]:
            continue  # the grand total of no complaints at all
        g_month, g_dims, values, counts = r[0], r[1:5], r[6:10], r[10:14]
        dims = [name for name, g in zip(HANDON_DIMENSIONS, g_dims) if not g]
        dimension = dims[0] if dims else None
        key = values[HANDON_DIMENSIONS.index(dimension)] if dimension else None
        out.append(HandonRow(dimension, key, None if g_month else r[5], *(int(n) for n in counts)))
    out.sort(key=lambda h: (h.dimension or "", h.month or date.min, h.key is None, h.key or 0))
    return out
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
    complaint_id: int
    distance_m: float
    similarity: float  # of its description to the one given (0 without one)


# Nearer than this many metres counts as "as near": within one band, the more similar description comes first.
NEARBY_BAND_M = 25
# With a scope (`among`), the nearest this many are looked at and those in the scope kept.
NEARBY_SCOPED_CANDIDATES = 100
NEARBY_SQL = """
    SELECT k.id, k.d, k.s FROM (
        SELECT c.id, ST_Distance(c.location::geography, p.g::geography) AS d,
               CASE WHEN %(text)s = '' THEN 0 ELSE similarity(c.description, %(text)s) END AS s
        FROM complaints_complaint c
        JOIN routing_category k ON k.id = c.category_id,
             (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS g) p
        WHERE c.state <> ALL(%(closed)s)
          AND c.location && ST_Expand(p.g, facilities_degree_window(%(radius)s, %(lat)s))
          AND (%(group)s::jsonb IS NULL OR k.group_i18n = %(group)s::jsonb)
          AND (%(exclude)s::bigint IS NULL OR c.id <> %(exclude)s)
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
    return [Nearby(complaint_id=r[0], distance_m=float(r[1]), similarity=float(r[2])) for r in rows]
