"""Hand-ons measured (issue 11 §3): complaints.handons.handon_rates, from the complaints' real history made by
the services (hand-ons, answers, confirmations, denials, duplicates, moderation) on the demo city."""
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
import shapely
from django.utils import timezone

from complaints.models import Complaint
from complaints.handons import HANDON_DIMENSIONS, HandonRow, handon_rates
from complaints.services import (complaint_answer, complaint_confirm, complaint_create, complaint_deny,
                                 complaint_hide, complaint_mark_duplicate, complaint_transfer)
from complaints.tracking import confirmation_key
from facilities.models import Facility
from routing.models import Category

from .factories import MOSCOW, make_user

pytestmark = pytest.mark.django_db


def _resolve(c, user):
    c = complaint_answer(complaint=c, user=user, text="Done.")
    return complaint_confirm(tracking_code=c.tracking_code, key=confirmation_key(c))


@pytest.fixture
def history(departments):
    """Eight complaints with known histories, all filed now:
    c1 answered and confirmed (first contact); c2 handed on, then resolved by the other department; c3 answered,
    denied (reopened), answered again and confirmed; c4 open; c5 a duplicate and c6 hidden (neither counted); c7
    handed on twice, open; c8 at a school building (facility type school), open."""
    started = timezone.now() - timedelta(seconds=1)
    admin = make_user("t-hand-admin", superuser=True)
    yard = Category.objects.get(code="yard-rubbish")
    school = Facility.objects.active().filter(type__code="school").order_by("source_key")[5]
    p = shapely.from_wkb(bytes(school.geom.wkb)).point_on_surface()

    def new(cat=yard, point=MOSCOW):
        return complaint_create(category=cat, point=point, description="Test")

    c1 = _resolve(new(), admin)
    c2 = complaint_transfer(complaint=new(), user=admin, reason="not ours", department=departments["a"])
    c2 = _resolve(c2, admin)
    c3 = complaint_answer(complaint=new(), user=admin, text="Done.")
    c3 = complaint_deny(tracking_code=c3.tracking_code, key=confirmation_key(c3), reason="not done")
    c3 = _resolve(c3, admin)
    c4 = new()
    c5 = complaint_mark_duplicate(complaint=new(), user=admin, of=c4)
    c6 = complaint_hide(complaint=new(), user=admin, reason="abuse")
    c7 = complaint_transfer(complaint=new(), user=admin, reason="not ours", department=departments["a"])
    c7 = complaint_transfer(complaint=c7, user=admin, reason="not ours either", department=departments["b"])
    c8 = new(Category.objects.get(code="kindergarten-territory"), (p.x, p.y))
    assert c8.decision.facility_id == school.pk
    return {"since": started, "c": [c1, c2, c3, c4, c5, c6, c7, c8], "school": school, "yard": yard}


def _one(rows, dimension=None, key=None, month=False):
    found = [r for r in rows if r.dimension == dimension and (dimension is None or r.key == key)
             and ((r.month is not None) == month)]
    assert len(found) == 1, (dimension, key, month, rows)
    return found[0]


def test_the_forwarding_rate_and_first_contact_resolution_of_a_known_history(history):
    rows = handon_rates(since=history["since"])
    total = _one(rows)
    assert (total.complaints, total.forwarded, total.resolved, total.first_contact) == (6, 2, 3, 1)
    assert total.forwarding_rate == pytest.approx(2 / 6)
    assert total.first_contact_rate == pytest.approx(1 / 3)
    month = _one(rows, month=True)
    assert month.month == timezone.localdate().replace(day=1)
    assert (month.complaints, month.forwarded, month.resolved, month.first_contact) == (6, 2, 3, 1)


def test_each_breakdown_counts_by_where_the_complaint_was_first_routed(history):
    c1, c2, _c3, _c4, _c5, _c6, c7, c8 = history["c"]
    rows = handon_rates(since=history["since"])
    council = c1.events.filter(to_department__isnull=False).order_by("at", "id").first().to_department_id
    # c2 and c7 ended with other departments, but count where they were first routed
    assert Complaint.objects.get(pk=c7.pk).department_id != council
    dep = _one(rows, "department", council)
    assert (dep.complaints, dep.forwarded, dep.resolved, dep.first_contact) == (5, 2, 3, 1)
    school = _one(rows, "department", c8.department_id)
    assert (school.complaints, school.forwarded) == (1, 0)
    cat = _one(rows, "category", history["yard"].pk)
    assert (cat.complaints, cat.forwarded, cat.resolved, cat.first_contact) == (5, 2, 3, 1)
    ftype = _one(rows, "facility_type", history["school"].type_id)
    assert ftype.complaints == 1
    no_facility = _one(rows, "facility_type", None)
    assert no_facility.complaints == 5
    district = _one(rows, "district", c1.area_id)
    assert district.complaints == 5
    for dimension in HANDON_DIMENSIONS:  # every breakdown adds up to the whole, over the period and by month
        assert sum(r.complaints for r in rows if r.dimension == dimension and r.month is None) == 6
        assert sum(r.forwarded for r in rows if r.dimension == dimension and r.month is not None) == 2


@pytest.mark.parametrize("scope, expected", [("council", 5), ("a", 0), ("b", 0), ("none", 0)])
def test_a_departments_scope_counts_the_complaints_first_routed_to_it(history, departments, scope, expected):
    c1 = history["c"][0]
    council = c1.events.filter(to_department__isnull=False).order_by("at", "id").first().to_department_id
    ids = {"council": [council], "a": [departments["a"].pk], "b": [departments["b"].pk], "none": []}[scope]
    rows = handon_rates(departments=ids, since=history["since"])
    assert sum(r.complaints for r in rows if r.dimension is None and r.month is None) == expected
    assert {r.key for r in rows if r.dimension == "department"} <= set(ids)


def test_months_are_the_citys_months_of_submission(history):
    c4 = history["c"][3]
    # 22:30 UTC on 31 March is already April in a time zone east of UTC (the demo's Moscow: 01:30)
    at = datetime(2020, 3, 31, 22, 30, tzinfo=dt_timezone.utc)
    Complaint.objects.filter(pk=c4.pk).update(submitted_at=at)
    rows = handon_rates(since=datetime(2020, 1, 1, tzinfo=dt_timezone.utc),
                        until=datetime(2020, 12, 31, tzinfo=dt_timezone.utc))
    month = _one(rows, month=True)
    assert month.month == timezone.localtime(at).date().replace(day=1)
    assert month.complaints == 1


def test_rows_survive_the_snapshots_json():
    row = HandonRow("district", 7, timezone.localdate().replace(day=1), 10, 3, 4, 2)
    assert HandonRow.from_list(row.as_list()) == row
    assert HandonRow(None, None, None, 0, 0, 0, 0).forwarding_rate is None
    assert HandonRow(None, None, None, 3, 0, 0, 0).first_contact_rate is None


def test_a_change_of_category_that_moves_a_complaint_is_no_hand_on_nor_first_contact(db):
    """Staff correct the category and the complaint goes to another department: not a hand-on (a correction, not a
    department handing it on), but not resolved at first contact either (not by the department first routed to)."""
    from complaints.services import complaint_recategorise

    started = timezone.now() - timedelta(seconds=1)
    admin = make_user("t-hand-recat", superuser=True)
    c = complaint_create(category=Category.objects.get(code="yard-rubbish"), point=MOSCOW, description="Test")
    first = c.department_id
    c = complaint_recategorise(complaint=c, user=admin, category=Category.objects.get(code="road-flooding"),
                               reason="a road")
    assert c.department_id != first
    c = _resolve(c, admin)
    rows = handon_rates(since=started)
    total = _one(rows)
    assert (total.complaints, total.forwarded, total.resolved, total.first_contact) == (1, 0, 1, 0)
    assert _one(rows, "department", first).complaints == 1
    assert _one(rows, "category", c.category_id).complaints == 1  # the category it ended with
