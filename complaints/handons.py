"""Hand-ons that point at the registry: complaints that the registry sent to one authority and staff handed on to
another. Complaints owns what a hand-on is (a `transfer` event in the history, complaints.services.complaint_transfer);
the data-staff queue (staff.corrections) reads these clusters and turns them into proposed corrections.

A complaint is counted against what decided its FIRST routing (the decision of the first history line that has one,
the routing at filing):
- a facility (rules facility_covers / facility_nearest / facility_picked): its owner was wrong;
- an admin area (rule area, of any level): the authority with jurisdiction over it was wrong;
- a category (rule department): the category's fixed department was wrong.
It is counted if it was handed on at least once inside the window, is not hidden, and now lies with an authority
other than the one that subject names TODAY (so a cluster that the registry already agrees with, after a correction
or an import, is no longer one). Clusters are (subject, the authority the complaints now lie with).

This definition is the queue's own: it counts complaints by where they ended, not the share of complaints handed on
(the forwarding rate of the statistics).
"""
import dataclasses
import datetime

from django.db import connection

from .models import ComplaintEvent, State

FACILITY, AREA, CATEGORY = "facility", "area", "category"
REASONS_MAX = 10  # reasons kept per cluster (the most recent first)

HANDON_CLUSTERS_SQL = """
WITH handed AS (
    SELECT c.id, c.category_id, d.authority_id AS ended_with, max(t.at) AS last_at,
           (array_agg(t.reason ORDER BY t.at DESC, t.id DESC))[1] AS reason
    FROM complaints_complaint c
    JOIN complaints_complaintevent t ON t.complaint_id = c.id AND t.kind = %(transfer)s AND t.at >= %(since)s
    JOIN facilities_department d ON d.id = c.department_id
    WHERE c.state <> %(hidden)s
    GROUP BY c.id, c.category_id, d.authority_id),
first AS (
    SELECT h.*, r.rule, r.facility_id, r.area_id, r.authority_id AS first_authority
    FROM handed h
    CROSS JOIN LATERAL (SELECT e.decision_id FROM complaints_complaintevent e
                        WHERE e.complaint_id = h.id AND e.decision_id IS NOT NULL ORDER BY e.at, e.id LIMIT 1) e
    JOIN routing_routingdecision r ON r.id = e.decision_id),
subjects AS (
    SELECT f.id, f.ended_with, f.last_at, f.reason,
           CASE WHEN f.rule IN ('facility_covers', 'facility_nearest', 'facility_picked') THEN 'facility'
                WHEN f.rule = 'area' THEN 'area'
                WHEN f.rule = 'department' THEN 'category' END AS kind,
           CASE WHEN f.rule IN ('facility_covers', 'facility_nearest', 'facility_picked') THEN f.facility_id
                WHEN f.rule = 'area' THEN f.area_id
                WHEN f.rule = 'department' THEN f.category_id END AS subject_id
    FROM first f),
standing AS (  -- what the registry says about each subject today
    SELECT s.*, CASE s.kind WHEN 'facility' THEN fa.owner_id WHEN 'area' THEN a.authority_id
                            WHEN 'category' THEN cd.authority_id END AS registry_authority
    FROM subjects s
    LEFT JOIN facilities_facility fa ON s.kind = 'facility' AND fa.id = s.subject_id AND fa.valid_to IS NULL
    LEFT JOIN facilities_adminarea a ON s.kind = 'area' AND a.id = s.subject_id AND a.valid_to IS NULL
    LEFT JOIN routing_category cat ON s.kind = 'category' AND cat.id = s.subject_id AND cat.rule = 'department'
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
        cur.execute(HANDON_CLUSTERS_SQL, {"transfer": ComplaintEvent.Kind.TRANSFER, "hidden": State.HIDDEN,
                                          "since": since, "threshold": int(threshold)})
        return [HandonCluster(kind=r[0], subject_id=r[1], registry_authority_id=r[2], ended_with_id=r[3],
                              complaint_ids=list(r[5]), handed_at=list(r[6]), reasons=list(r[7]))
                for r in cur.fetchall()]
