"""One definition of a hand-on (complaints.handons): the figures (handon_rates: the statistics, the staff workspace,
both CSV files) and the registry's queue (handon_clusters: staff.corrections) count the same complaints, against
the same subject of their first routing decision - a facility for every facility rule, the place over the category
(rule facility_group) included; an area; a category's department - and leave out the same ones (hidden,
duplicates, not handed on)."""
import datetime

import pytest
from django.contrib.gis.db.models.functions import PointOnSurface
from django.utils import timezone

from complaints.handons import FACILITY_RULES, SUBJECT_RULES, handon_clusters, handon_rates
from complaints.services import complaint_hide, complaint_mark_duplicate
from facilities.models import AdminArea, Department, Facility
from routing.models import RoutingDecision
from tests.complaints.factories import make_user
from tests.staff.corrections_helpers import file_at, hand_on, school_and_neighbour

pytestmark = pytest.mark.django_db

TVERSKOY_POINT = (37.6056, 55.7655)


def test_every_rule_that_names_the_registry_names_one_subject():
    """A rule added to routing (as facility_group was) must be given its subject here, or named as not the
    registry's (triage: no rule matched; manual: a person chose)."""
    named = [rule for rules in SUBJECT_RULES.values() for rule in rules]
    assert len(named) == len(set(named))
    assert set(named) == {r.value for r in RoutingDecision.Rule} - {"triage", "manual"}
    assert RoutingDecision.Rule.FACILITY_GROUP in FACILITY_RULES


@pytest.fixture
def history(db):
    """Complaints decided by each kind of rule, each handed on to an authority other than the one the registry
    names, and some that neither reading may count."""
    since = timezone.now() - datetime.timedelta(seconds=1)
    school, neighbour = school_and_neighbour()
    admin = make_user("t-hd-admin", superuser=True)
    tverskoy = AdminArea.objects.get(level="district", name="Тверской")
    prefecture = Department.objects.filter(authority=tverskoy.parent.authority).order_by("pk").first()
    council = tverskoy.authority.departments.order_by("pk").first()
    college = (Facility.objects.active().filter(type__code="college")
               .extra(where=["GeometryType(geom) IN ('POLYGON', 'MULTIPOLYGON')"])
               .exclude(owner=neighbour.authority).annotate(inside=PointOnSurface("geom")).order_by("source_key")[0])
    cases = [  # (where, category, the department handed on to, the rule expected)
        (school.inside, "school-territory", neighbour, "facility_covers"),
        (college.inside, "school-territory", neighbour, "facility_group"),  # the place over the category
        (TVERSKOY_POINT, "waste-dump", prefecture, "area"),
        (TVERSKOY_POINT, "road-pothole", council, "department"),
    ]
    handed = []
    for where, code, to, rule in cases:
        for _ in range(2):
            c = file_at(where, code=code, text="Текст")
            assert c.decision.rule == rule
            handed.append(hand_on(c, admin, to))
    file_at(school.inside)  # not handed on
    complaint_hide(complaint=hand_on(file_at(school.inside), admin, neighbour), user=admin, reason="abuse")
    original = file_at(TVERSKOY_POINT, code="waste-dump", text="Текст")
    complaint_mark_duplicate(complaint=hand_on(file_at(TVERSKOY_POINT, code="waste-dump", text="Текст"), admin,
                                               prefecture), user=admin, of=original)
    return {"since": since, "handed": handed, "school": school, "college": college}


def test_the_figures_and_the_queue_count_the_same_complaints(history):
    rows = handon_rates(since=history["since"])
    (total,) = [r for r in rows if r.dimension is None and r.month is None]
    clusters = handon_clusters(since=history["since"], threshold=1)
    in_clusters = sorted(i for cl in clusters for i in cl.complaint_ids)
    assert in_clusters == sorted(c.pk for c in history["handed"])
    assert total.forwarded == len(in_clusters) == 8


def test_they_agree_on_the_subject_a_hand_on_counts_against(history):
    rows = handon_rates(since=history["since"])
    clusters = handon_clusters(since=history["since"], threshold=1)
    kinds = {}
    for cl in clusters:
        kinds[cl.kind] = kinds.get(cl.kind, 0) + cl.count
    assert kinds == {"facility": 4, "area": 2, "category": 2}
    # the figures' facility type is the type of the queue's facility subject (the college for facility_group)
    per_facility = {}
    for cl in clusters:
        if cl.kind == "facility":
            per_facility[cl.subject_id] = per_facility.get(cl.subject_id, 0) + cl.count
    assert per_facility == {history["school"].pk: 2, history["college"].pk: 2}
    by_type = {r.key: r.forwarded for r in rows if r.dimension == "facility_type" and r.month is None}
    assert by_type == {history["school"].type_id: 2, history["college"].type_id: 2,
                       None: kinds["area"] + kinds["category"]}
