"""Hand-ons: the one definition, and the two readings of it (issue 11 §3 and §4).

Complaints owns what a hand-on is, as it owns the history it is read from (DESIGN.md: "complaints alone writes
complaints and their history"). Every reader asks here: the forwarding rate and first-contact resolution
(handon_rates: the staff workspace, the public statistics through web.StatisticsSnapshot, both CSV files) and the
registry's queue (handon_clusters: staff.corrections). The definition, written once below as SQL fragments that both
queries are built from (docs/statistics.md):

- COUNTED: every complaint but hidden ones and duplicates (NOT_COUNTED);
- HANDED ON: the complaint has a `transfer` event (HANDON_EVENT), a department handing it on (staff's "hand on",
  complaints.services.complaint_transfer); a re-route after a registry change or a change of category is not one;
- its FIRST ROUTING DECISION: the decision of its first `routed` event (the routing at filing), else its current
  one (first_decision_sql);
- the SUBJECT that decision names, which the hand-on says was wrong (subject_sql): a facility for every facility
  rule (FACILITY_RULES: picked, covers, nearest and the place over the category, facility_group), its owner; an
  admin area (rule area, of any level), the authority with jurisdiction over it; the category (rule department),
  its fixed department.

handon_rates counts, per department / category / facility type / district and month, the share of complaints handed
on; handon_clusters groups the complaints handed on inside a window by (subject, the authority they now lie with)
where that is not the authority the subject names today (so a cluster the registry already agrees with, after a
correction or an import, is no longer one).
"""
import dataclasses
import datetime
from datetime import date

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils import timezone

from facilities.selectors import finest_level
from routing.models import RoutingDecision

from .models import ComplaintEvent, State

# --- the definition ----------------------------------------------------------------------------------------------

HANDON_EVENT = ComplaintEvent.Kind.TRANSFER
ROUTED_EVENT = ComplaintEvent.Kind.ROUTED
NOT_COUNTED = (State.HIDDEN, State.DUPLICATE)
FACILITY, AREA, CATEGORY = "facility", "area", "category"
Rule = RoutingDecision.Rule
FACILITY_RULES = (Rule.FACILITY_PICKED, Rule.FACILITY_COVERS, Rule.FACILITY_NEAREST, Rule.FACILITY_GROUP)
SUBJECT_RULES = {FACILITY: FACILITY_RULES, AREA: (Rule.AREA,), CATEGORY: (Rule.DEPARTMENT,)}


def _words(values):
    return ", ".join(f"'{str(v)}'" for v in values)  # constants of this module, never input


def counted_sql(c="c"):
    """The condition on a complaint (alias `c`) that it is counted."""
    return f"{c}.state NOT IN ({_words(NOT_COUNTED)})"


def handed_on_sql(c="c", alias="ho", since=None):
    """A CROSS JOIN LATERAL giving, for complaint `c`, `alias`.n (its hand-ons; since the parameter named by `since`,
    when given), `alias`.last_at and `alias`.reason (the last one's time and reason)."""
    window = f" AND t.at >= %({since})s" if since else ""
    return f"""CROSS JOIN LATERAL (
        SELECT count(*) AS n, max(t.at) AS last_at, (array_agg(t.reason ORDER BY t.at DESC, t.id DESC))[1] AS reason
        FROM complaints_complaintevent t
        WHERE t.complaint_id = {c}.id AND t.kind = '{HANDON_EVENT}'{window}) {alias}"""


def first_decision_sql(c="c", alias="fd"):
    """LEFT JOINs making `alias` complaint `c`'s first routing decision (routing_routingdecision)."""
    return f"""LEFT JOIN LATERAL (
        SELECT e.decision_id FROM complaints_complaintevent e
        WHERE e.complaint_id = {c}.id AND e.kind = '{ROUTED_EVENT}' AND e.decision_id IS NOT NULL
        ORDER BY e.at, e.id LIMIT 1) {alias}_e ON true
    LEFT JOIN routing_routingdecision {alias} ON {alias}.id = coalesce({alias}_e.decision_id, {c}.decision_id)"""


def subject_sql(d="fd", c="c"):
    """(kind, id) SQL expressions: the subject decision `d` of complaint `c` names (NULLs for a triage decision)."""
    whens = {FACILITY: f"{d}.facility_id", AREA: f"{d}.area_id", CATEGORY: f"{c}.category_id"}
    kind = "CASE " + " ".join(f"WHEN {d}.rule IN ({_words(rules)}) THEN '{k}'"
                              for k, rules in SUBJECT_RULES.items()) + " END"
    subject = "CASE " + " ".join(f"WHEN {d}.rule IN ({_words(rules)}) THEN {whens[k]}"
                                 for k, rules in SUBJECT_RULES.items()) + " END"
    return kind, subject


# --- hand-ons measured: the forwarding rate and first-contact resolution (issue 11 §3) ------------------------------
# - the complaints counted, by the month each was submitted in (the city's time zone);
# - forwarding rate = handed on / counted (Mark-a-Spot's measure);
# - resolved at first contact: resolved now, by the department it was first routed to, with no hand-on and never
#   reopened (no `reopened` event, reopen_count 0). First-contact resolution = resolved at first contact / resolved;
# - its department: the one it was first routed to (the first event that names a department: the department it
#   came from, else the one it went to; with no such event, its current one); its facility type: that of the
#   facility subject of its first routing decision (none: no facility decided); its category: the current one
#   (after staff corrected it); its district: the complaint's area if it is of the finest level
#   (facilities.selectors.finest_level: the districts in the demo).
HANDON_DIMENSIONS = ("department", "category", "facility_type", "district")


def _handon_rates_sql():
    kind, subject = subject_sql("fd", "c")
    return f"""
WITH b AS (
    SELECT date_trunc('month', c.submitted_at AT TIME ZONE %(tz)s)::date AS month,
           coalesce(fe.department_id, c.department_id) AS department_id,
           c.category_id, ff.type_id AS facility_type_id,
           CASE WHEN a.level = %(district_level)s THEN a.id END AS district_id,
           ho.n > 0 AS forwarded,
           c.state = %(resolved)s AS resolved,
           c.state = %(resolved)s AND ho.n = 0 AND NOT ro.reopened AND c.reopen_count = 0
               AND c.department_id = coalesce(fe.department_id, c.department_id) AS first_contact
    FROM complaints_complaint c
    LEFT JOIN LATERAL (  -- the first department: where the first event that named a department found it or sent it
        SELECT coalesce(e.from_department_id, e.to_department_id) AS department_id FROM complaints_complaintevent e
        WHERE e.complaint_id = c.id AND (e.from_department_id IS NOT NULL OR e.to_department_id IS NOT NULL)
        ORDER BY e.at, e.id LIMIT 1) fe ON true
    {first_decision_sql("c", "fd")}
    {handed_on_sql("c", "ho")}
    CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM complaints_complaintevent e
                                       WHERE e.complaint_id = c.id AND e.kind = 'reopened') AS reopened) ro
    LEFT JOIN facilities_facility ff ON {kind} = '{FACILITY}' AND ff.id = {subject}
    LEFT JOIN facilities_adminarea a ON a.id = c.area_id
    WHERE {counted_sql("c")} {{where}})
SELECT GROUPING(b.month), GROUPING(b.department_id), GROUPING(b.category_id), GROUPING(b.facility_type_id),
       GROUPING(b.district_id), b.month, b.department_id, b.category_id, b.facility_type_id, b.district_id,
       count(*), count(*) FILTER (WHERE b.forwarded), count(*) FILTER (WHERE b.resolved),
       count(*) FILTER (WHERE b.first_contact)
FROM b {{scope}}
GROUP BY GROUPING SETS ((), (b.month), (b.department_id), (b.category_id), (b.facility_type_id), (b.district_id),
                        (b.month, b.department_id), (b.month, b.category_id), (b.month, b.facility_type_id),
                        (b.month, b.district_id))
"""


@dataclasses.dataclass(frozen=True)
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
                         "district_level": finest_level(using)}
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
    sql = _handon_rates_sql().format(where="".join(f" AND {w}" for w in where), scope=scope)
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


# --- hand-ons that point at the registry (issue 11 §4) ---------------------------------------------------------------
REASONS_MAX = 10  # reasons kept per cluster (the most recent first)


def _clusters_sql():
    kind, subject = subject_sql("fd", "c")
    return f"""
WITH subjects AS (
    SELECT c.id, d.authority_id AS ended_with, ho.last_at, ho.reason, {kind} AS kind, {subject} AS subject_id
    FROM complaints_complaint c
    {handed_on_sql("c", "ho", since="since")}
    JOIN facilities_department d ON d.id = c.department_id
    {first_decision_sql("c", "fd")}
    WHERE {counted_sql("c")} AND ho.n > 0),
standing AS (  -- what the registry says about each subject today
    SELECT s.*, CASE s.kind WHEN '{FACILITY}' THEN fa.owner_id WHEN '{AREA}' THEN a.authority_id
                            WHEN '{CATEGORY}' THEN cd.authority_id END AS registry_authority
    FROM subjects s
    LEFT JOIN facilities_facility fa ON s.kind = '{FACILITY}' AND fa.id = s.subject_id AND fa.valid_to IS NULL
    LEFT JOIN facilities_adminarea a ON s.kind = '{AREA}' AND a.id = s.subject_id AND a.valid_to IS NULL
    LEFT JOIN routing_category cat ON s.kind = '{CATEGORY}' AND cat.id = s.subject_id AND cat.rule = 'department'
    LEFT JOIN facilities_department cd ON cd.id = cat.department_id
    WHERE s.kind IS NOT NULL AND s.subject_id IS NOT NULL)
SELECT kind, subject_id, registry_authority, ended_with, count(*) AS complaints,
       array_agg(id ORDER BY last_at DESC, id DESC) AS ids,
       array_agg(last_at ORDER BY last_at DESC, id DESC) AS handed_at,
       array_agg(reason ORDER BY last_at DESC, id DESC) AS reasons
FROM standing
WHERE registry_authority IS NOT NULL AND registry_authority <> ended_with
GROUP BY kind, subject_id, registry_authority, ended_with
HAVING count(*) >= %(threshold)s
ORDER BY count(*) DESC, kind, subject_id, ended_with"""


@dataclasses.dataclass
class HandonCluster:
    kind: str  # facility, area or category
    subject_id: int
    registry_authority_id: int  # who the registry names today
    ended_with_id: int  # the authority the complaints lie with now
    complaint_ids: list  # most recently handed on first
    handed_at: list  # the last hand-on of each, in the same order
    reasons: list  # the last hand-on's reason of each, in the same order

    @property
    def count(self):
        return len(self.complaint_ids)


def handon_clusters(*, since, threshold):
    """The (subject, authority) clusters of at least `threshold` complaints handed on since `since` (see above)."""
    if not isinstance(since, datetime.datetime) or threshold < 1:
        raise ValueError("handon_clusters needs a datetime and a threshold of at least 1")
    with connection.cursor() as cur:
        cur.execute(_clusters_sql(), {"since": since, "threshold": int(threshold)})
        return [HandonCluster(kind=r[0], subject_id=r[1], registry_authority_id=r[2], ended_with_id=r[3],
                              complaint_ids=list(r[5]), handed_at=list(r[6]), reasons=list(r[7]))
                for r in cur.fetchall()]
