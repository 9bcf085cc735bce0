"""Re-routes after admin edits run on a real worker, not in the request: the edit's page answers with the
re-route still pending (a RerouteRequest in the edit's own transaction), the worker does it; a burst of edits in
separate requests is one re-route; an edit rolled back asks for nothing; the admin lists them pending and done."""
import os
import signal

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client

from complaints.models import Complaint, ComplaintEvent
from facilities.models import AdminArea, Authority, Department
from routing.models import RerouteRequest, RoutingAssignment
from tests.routing.conftest import RED_SQUARE, make_complaint

from .conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin(demo_city):
    client = Client()
    client.force_login(User.objects.create_superuser("t-reroute-admin", password="x"))
    return client


def acting_council(code="acting-council"):
    acting = Authority.objects.create(code=code, name=f"Временная управа {code}", short_name=f"Управа {code}",
                                      kind="district_council")
    Department.objects.create(authority=acting, code="main", name=f"Временная управа {code}")
    return acting


def stopped(worker, stop):
    """SIGSTOP / SIGCONT the worker's whole process group (its pool's children too)."""
    os.killpg(worker.proc.pid, signal.SIGSTOP if stop else signal.SIGCONT)


def test_an_admin_edit_is_rerouted_by_the_worker_not_in_the_request(worker, admin):
    trade = make_complaint(RED_SQUARE, "illegal-trade")
    prefecture = AdminArea.objects.get(level="okrug", name="Центральный").authority
    desk = Department.objects.create(authority=prefecture, code="kiosks", name="Отдел по НТО")
    assignment = RoutingAssignment.objects.get(authority=prefecture, category__code="illegal-trade")
    wait_until(lambda: not RerouteRequest.objects.filter(state="pending").exists(), what="the set-up's re-route")
    RerouteRequest.objects.all().delete()
    stopped(worker, True)  # the worker holds still: the request must not wait for it
    try:
        response = admin.post(f"/admin/routing/routingassignment/{assignment.pk}/change/", {
            "authority": prefecture.pk, "category": assignment.category_id, "department": desk.pk,
            "dataset": assignment.dataset_id or ""})
        assert response.status_code == 302, response.context and response.context["adminform"].form.errors
        assert Complaint.objects.get(pk=trade.pk).department_id == trade.department_id  # not moved by the request
        pending = RerouteRequest.objects.get()
        assert pending.state == "pending" and not pending.everything
        assert "pending" in admin.get("/admin/routing/rerouterequest/").content.decode()
    finally:
        stopped(worker, False)
    wait_until(lambda: RerouteRequest.objects.get().state == "done", what="the worker to re-route")
    trade.refresh_from_db()
    assert trade.department == desk and RerouteRequest.objects.get().moved == 1
    assert "done" in admin.get("/admin/routing/rerouterequest/").content.decode()


def test_a_burst_of_edits_is_one_reroute(worker, demo_city, settings):
    complaints = [make_complaint(RED_SQUARE, "yard-pothole") for _ in range(3)]
    tverskoy = AdminArea.objects.get(level="district", name="Тверской", valid_to=None)
    RerouteRequest.objects.all().delete()
    councils = [acting_council(f"burst-{i}") for i in range(4)]
    for council in councils:  # four edits, four transactions, within the coalescing delay
        tverskoy.authority = council
        tverskoy.save()
    wait_until(lambda: not RerouteRequest.objects.filter(state="pending").exists(), what="the re-routes")
    done = RerouteRequest.objects.filter(areas=[tverskoy.pk])
    assert done.count() == 4 and len(set(done.values_list("batch", flat=True))) == 1  # one re-route did them
    for c in complaints:
        c.refresh_from_db()
        assert c.department.authority == councils[-1]
        assert ComplaintEvent.objects.filter(complaint=c, kind="routed").count() == 1  # moved once, not 4 times


def test_an_edit_rolled_back_asks_for_no_reroute(worker, demo_city):
    yard = make_complaint(RED_SQUARE, "yard-pothole")
    tverskoy = AdminArea.objects.get(level="district", name="Тверской", valid_to=None)
    acting = acting_council()
    wait_until(lambda: not RerouteRequest.objects.filter(state="pending").exists(), what="the set-up's re-route")
    before = RerouteRequest.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        tverskoy.authority = acting
        tverskoy.save()
        raise RuntimeError
    assert RerouteRequest.objects.count() == before
    assert Complaint.objects.get(pk=yard.pk).department_id == yard.department_id
