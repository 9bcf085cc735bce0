"""Reads of the staff workspace. Every one starts from complaints.selectors.tickets_for_user, so a ticket that is
not the user's is simply not there, whatever the URL."""
import json

from django.db.models import BooleanField, ExpressionWrapper, F

from complaints.models import OPEN_STATES
from complaints.selectors import overdue_q, tickets_for_user
from facilities.models import AdminArea, Facility
from routing.suggest import category_checks

SORTS = {
    "deadline": ("deadline", "id"),
    "-deadline": ("-deadline", "-id"),
    "-submitted": ("-submitted_at", "-id"),
}
OPEN, ALL = "open", "all"


def tickets_filtered(user, *, state=OPEN, category=None, district=None, overdue=False, sort="deadline"):
    """The user's tickets, filtered and sorted as the ticket list and its CSV export show them."""
    tickets = (tickets_for_user(user)
               .annotate(district_name=F("area__name"),
                         is_overdue=ExpressionWrapper(overdue_q(), output_field=BooleanField())))
    if state == OPEN:
        tickets = tickets.filter(state__in=OPEN_STATES)
    elif state and state != ALL:
        tickets = tickets.filter(state=state)
    if category is not None:
        tickets = tickets.filter(category=category)
    if district is not None:
        tickets = tickets.filter(area=district)
    if overdue:
        tickets = tickets.filter(overdue_q())
    return tickets.order_by(*SORTS.get(sort, SORTS["deadline"]))


def ticket_flags(tickets):
    """{ticket id: routing.suggest.CategoryCheck} for the open tickets among these (a page of the list) whose
    words and place point strongly to another category, or which were filed under a catch-all one."""
    return category_checks((t.pk, t.description, t.location, t.category.code) for t in tickets
                           if t.state in OPEN_STATES and t.description)


def ticket_for_user(user, pk):
    """The user's ticket with this public number (its id), or None. Staff never see or use a tracking code: it is
    the resident's key to confirm or deny the fix."""
    if not 0 < pk < 2 ** 63:  # a number from the URL that no id can be (and the database would refuse)
        return None
    return (tickets_for_user(user).select_related("decision", "duplicate_of")
            .annotate(is_overdue=ExpressionWrapper(overdue_q(), output_field=BooleanField()))
            .filter(pk=pk).first())


def ticket_still_visible(user, ticket):
    return tickets_for_user(user).filter(pk=ticket.pk).exists()


def ticket_map(ticket, simplify=0.0005):
    """The ticket's small map: GeoJSON features (the facility, or without one the district; and the point), and
    the bounds to show as [[south, west], [north, east]]: the point and the nearest part of the facility (a school
    may have buildings all over a district), or the district."""
    features = []
    focus = ticket.location
    facility = Facility.objects.filter(pk=ticket.facility_id).only("geom", "name").first() \
        if ticket.facility_id else None
    if facility is not None:
        features.append(_feature(facility.geom, role="facility", name=facility.name))
        parts = list(facility.geom) if facility.geom.geom_type.startswith("Multi") else [facility.geom]
        focus = min(parts, key=ticket.location.distance).union(ticket.location)
    elif ticket.area_id:
        area = AdminArea.objects.filter(pk=ticket.area_id).only("geom", "name").first()
        if area is not None:
            focus = area.geom.simplify(simplify, preserve_topology=True)
            features.append(_feature(focus, role="area", name=area.name))
    features.append(_feature(ticket.location, role="complaint", name=f"№ {ticket.pk}"))
    west, south, east, north = focus.extent
    return {"features": features, "bounds": [[south, west], [north, east]]}


def _feature(geom, **properties):
    return {"type": "Feature", "properties": properties, "geometry": json.loads(geom.json)}
