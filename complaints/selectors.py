"""Reads of complaints. Who may see and work which tickets is decided here and nowhere else."""

import datetime

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from facilities.models import Department

from .models import DEADLINE_STATES, OPEN_STATES, Complaint, ComplaintEvent, State, Volunteer
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
    return user.is_superuser or user.groups.filter(name=DISPATCHERS_GROUP).exists()


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
