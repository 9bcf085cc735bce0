"""Edits of what routing reads (by hand, in the admin) re-route the open complaints once the edit is committed.

Imports re-route from importers.core (they write with SQL, not the ORM). The re-route is scheduled once per
transaction however many rows the edit saves; with a task queue it would be a Celery task instead. Edits that can
move geometry search again: around the edited facilities only, or everywhere after an area or a category's types or
radius changed. The others (authorities, departments, the routing table) only decide again who answers for what
each complaint's decision found.
"""
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from facilities.models import AdminArea, Authority, Department, Facility

from .models import Category, RoutingAssignment

SPATIAL = (AdminArea, Category)
NOT_SPATIAL = (Authority, Department, RoutingAssignment)


def _reroute_after_commit():
    from .services import complaints_reroute

    conn = transaction.get_connection()
    spatial, conn.routing_reroute_spatial = getattr(conn, "routing_reroute_spatial", True), False
    around, conn.routing_reroute_around = getattr(conn, "routing_reroute_around", set()), set()
    complaints_reroute(reason="registry edited", spatial=spatial,
                       around=sorted(around) if around and not spatial else None)


def schedule_reroute(sender=None, raw=False, instance=None, **kwargs):
    if raw:  # loaddata
        return
    conn = transaction.get_connection()
    spatial = sender in SPATIAL or sender is Category.facility_types.through
    facility = {instance.pk} if sender is Facility and instance is not None and instance.pk is not None else set()
    if any(func is _reroute_after_commit for _, func, _ in conn.run_on_commit):
        conn.routing_reroute_spatial = conn.routing_reroute_spatial or spatial
        conn.routing_reroute_around |= facility
        return
    conn.routing_reroute_spatial, conn.routing_reroute_around = spatial, facility
    # robust: the edit is committed whatever happens to the re-route (it can be run again: manage.py reroute)
    transaction.on_commit(_reroute_after_commit, robust=True)


def connect():
    for model in (Facility,) + SPATIAL + NOT_SPATIAL:
        post_save.connect(schedule_reroute, sender=model, dispatch_uid=f"routing.reroute.save.{model.__name__}")
        post_delete.connect(schedule_reroute, sender=model, dispatch_uid=f"routing.reroute.delete.{model.__name__}")
    m2m_changed.connect(schedule_reroute, sender=Category.facility_types.through,
                        dispatch_uid="routing.reroute.category_types")
