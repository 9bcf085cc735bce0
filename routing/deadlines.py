"""Deadlines in working days: weekends and the holidays in routing.Holiday (data, imported) do not count.

The holidays change rarely, so each process keeps the due dates it computed (`due_date`), each with the holidays'
change stamp (migration routing 0003) read in the same statement as the holidays. Whoever stores a date it was
given from that memo checks the stamp again in its own statement (`HOLIDAYS_VERSION_SQL`) and asks for a fresh one
(`due_date_fresh`) when it has moved: so no process, of however many app servers, uses holidays older than the ones
its own statement can see, and none asks for the holidays on every complaint.
"""
import datetime

from django.db import connection
from django.utils import timezone

from .models import Holiday

# The current stamp of the holidays, as a scalar subquery for another statement (NULL: no stamp, reuse nothing).
HOLIDAYS_VERSION_SQL = "(SELECT hv.version FROM routing_holiday_version hv WHERE hv.id = 1)"
MEMO_MAX = 1000  # (local date, days) pairs kept per process; older dates are never asked for again
_memo = {}  # (local start date, working days) -> (stamp, due date)


def _window(day, days):
    """The holidays that can matter for `days` working days after `day`: the span grows with the days asked for."""
    return day, day + datetime.timedelta(days=days * 2 + 60)


def _count(day, days, holidays):
    left = days
    while left:
        day += datetime.timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            left -= 1
    return day


def add_working_days(start: datetime.datetime, days: int) -> datetime.datetime:
    """The moment `days` working days after `start`, at the same local time of day.

    Counting starts on the day after `start`'s local date: Friday 10:00 + 1 is Monday 10:00 (or the next working
    day after a holiday Monday). A complaint filed on a day off is counted the same way: Saturday + 1 is Monday.
    """
    if days < 0:
        raise ValueError("days must be >= 0")
    local = timezone.localtime(start) if timezone.is_aware(start) else start
    first, last = _window(local.date(), days)
    holidays = set(Holiday.objects.filter(date__gt=first, date__lte=last).values_list("date", flat=True))
    # timetz() keeps the zone (zoneinfo), which gives the right offset for the new date.
    return datetime.datetime.combine(_count(local.date(), days, holidays), local.timetz())


def due_date(start, days):
    """(add_working_days(start, days), the stamp to check): from this process's memo when it has the date (then
    the stamp it was computed under: the caller compares it with HOLIDAYS_VERSION_SQL read in its own statement
    and calls due_date_fresh() if they differ), else computed now (then None: nothing to check)."""
    local = timezone.localtime(start)
    kept = _memo.get((local.date(), days))
    if kept is not None:
        return datetime.datetime.combine(kept[1], local.timetz()), kept[0]
    return due_date_fresh(start, days), None


def due_date_fresh(start, days):
    """add_working_days(start, days), the holidays and their stamp read in ONE statement (the same snapshot), and
    remembered with that stamp for the next due_date() of the same local date and days."""
    if days < 0:
        raise ValueError("days must be >= 0")
    local = timezone.localtime(start)
    first, last = _window(local.date(), days)
    with connection.cursor() as cur:
        cur.execute(f"SELECT {HOLIDAYS_VERSION_SQL}, ARRAY(SELECT h.date FROM {Holiday._meta.db_table} h "
                    f"WHERE h.date > %s AND h.date <= %s)", [first, last])
        version, holidays = cur.fetchone()
    day = _count(local.date(), days, set(holidays))
    if version is not None:
        if len(_memo) >= MEMO_MAX:
            _memo.clear()
        _memo[(local.date(), days)] = (version, day)
    return datetime.datetime.combine(day, local.timetz())
