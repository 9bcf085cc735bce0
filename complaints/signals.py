"""Edits of what routing reads (by hand, in the admin) re-route the open complaints once the edit is committed.

Complaints connects these (complaints.apps): the re-route writes complaints, routing only plans it. Imports
re-route from importers.core (they write with SQL, not the ORM). The re-route is asked for once per
transaction however many rows the edit saves (a RerouteRequest, routing.requests) and done by a worker on the
task queue, which takes a burst of such requests as one; never inside the web request. It searches
again only around what the edit touched: the facilities, areas and categories saved or deleted (see
complaints.services.complaints_reroute). Edits of authorities, departments and the routing table need no search: only
who answers for what each complaint's decision found is decided again.
"""
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from facilities.models import AdminArea, Authority, Department, Facility
from routing.models import Category, RerouteRequest, RoutingAssignment
from routing.requests import reroute_wake

TOUCHED = {Facility: "facilities", AdminArea: "areas", Category: "categories"}
NOT_SPATIAL = (Authority, Department, RoutingAssignment)


def _narrow_after_commit():
    """The edit is committed with its request (which says "everything", the safe default if this never runs):
    narrow it to what the edit touched, then wake a worker."""
    conn = transaction.get_connection()
    touched, conn.routing_reroute_touched = getattr(conn, "routing_reroute_touched", {}), {}
    request_id = getattr(conn, "routing_reroute_request", None)
    conn.routing_reroute_request = None
    if request_id is not None and not touched.pop("all", False):
        RerouteRequest.objects.filter(pk=request_id, state=RerouteRequest.State.PENDING).update(
            everything=False, **{key: sorted(ids) for key, ids in touched.items()})
    reroute_wake()


def schedule_reroute(sender=None, raw=False, instance=None, **kwargs):
    if raw:  # loaddata
        return
    conn = transaction.get_connection()
    scheduled = any(func is _narrow_after_commit for _, func, _ in conn.run_on_commit)
    if not scheduled:
        conn.routing_reroute_touched = {}
    if sender is Category.facility_types.through:  # a category's types: from either side of the relation
        if kwargs.get("reverse") and kwargs.get("pk_set") is None:  # a type's categories cleared: which ones?
            conn.routing_reroute_touched["all"] = True
        ids = set(kwargs.get("pk_set") or ()) if kwargs.get("reverse") else {instance.pk}
        conn.routing_reroute_touched.setdefault("categories", set()).update(ids)
    elif sender in TOUCHED and instance is not None and instance.pk is not None:
        conn.routing_reroute_touched.setdefault(TOUCHED[sender], set()).add(instance.pk)
    if not scheduled:
        # The request, in the edit's transaction: one INSERT per transaction however many rows it saves.
        conn.routing_reroute_request = RerouteRequest.objects.create(reason="registry edited", everything=True).pk
        # robust: the edit is committed whatever happens to the wake-up (the sweep finds the request)
        transaction.on_commit(_narrow_after_commit, robust=True)


def connect():
    for model in tuple(TOUCHED) + NOT_SPATIAL:
        post_save.connect(schedule_reroute, sender=model, dispatch_uid=f"complaints.reroute.save.{model.__name__}")
        post_delete.connect(schedule_reroute, sender=model, dispatch_uid=f"complaints.reroute.delete.{model.__name__}")
    m2m_changed.connect(schedule_reroute, sender=Category.facility_types.through,
                        dispatch_uid="complaints.reroute.category_types")
