"""Deadlines in working days: the days of the week the city does not work (routing.WorkingWeek) and the holidays
in routing.Holiday (both data, imported) do not count.

The calendar changes rarely, so each process keeps the due dates it computed (`due_date`), each with the calendar's
change stamp (migrations routing 0003_holiday_version and 0005_working_week_stamp: every write to the holidays or
the working weeks takes a new one) read in the same statement as the calendar. Whoever stores a date it was given
from that memo checks the stamp again in its own statement (`HOLIDAYS_VERSION_SQL`) and asks for a fresh one
(`due_date_fresh`) when it has moved: so no process, of however many app servers, uses a calendar older than the one
its own statement can see, and none reads the calendar on every complaint.
"""
import bisect
import datetime

from django.db import connection
from django.utils import timezone

# The working week while none is loaded (the ISO weekdays 1-5): what most of the world works.
DEFAULT_DAYS = "12345"

# The current stamp of the calendar, as a scalar subquery for another statement (NULL: no stamp, reuse nothing).
HOLIDAYS_VERSION_SQL = "(SELECT hv.version FROM routing_holiday_version hv WHERE hv.id = 1)"
MEMO_MAX = 1000  # (local date, days) pairs kept per process; older dates are never asked for again
_memo = {}  # (local start date, working days) -> (stamp, due date)


def _window(day, days):
    """The holidays that can matter for `days` working days after `day`: the span grows with the days asked for
    (so does a short working week)."""
    return day, day + datetime.timedelta(days=days * 7 + 60)


def _count(day, days, holidays, weeks):
    works = working_week(weeks)
    left = days
    while left:
        day += datetime.timedelta(days=1)
        if day.isoweekday() in works(day.year) and day not in holidays:
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
    _version, holidays, weeks = _calendar(*_window(local.date(), days))
    # timetz() keeps the zone (zoneinfo), which gives the right offset for the new date.
    return datetime.datetime.combine(_count(local.date(), days, holidays, weeks), local.timetz())


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
    """add_working_days(start, days), the calendar and its stamp read in ONE statement (the same snapshot), and
    remembered with that stamp for the next due_date() of the same local date and days."""
    if days < 0:
        raise ValueError("days must be >= 0")
    local = timezone.localtime(start)
    version, holidays, weeks = _calendar(*_window(local.date(), days))
    day = _count(local.date(), days, holidays, weeks)
    if version is not None:
        if len(_memo) >= MEMO_MAX:
            _memo.clear()
        _memo[(local.date(), days)] = (version, day)
    return datetime.datetime.combine(day, local.timetz())


def working_week(weeks):
    """year -> the set of ISO weekdays worked that year, from [(year, "12345"), ...] in year order: a row holds from
    its year until the next row's; before the first, the first holds; with none, DEFAULT_DAYS."""
    years = [year for year, _ in weeks]
    default = {int(d) for d in DEFAULT_DAYS}
    sets = [{int(d) for d in days if d in "1234567"} or default for _, days in weeks] or [default]

    def works(year):
        return sets[max(bisect.bisect_right(years, year) - 1, 0)]

    return works


def _calendar(after, until):
    """(the calendar's stamp, the holiday dates in (after, until], [(year, days)] of every working week), in one
    statement: one snapshot, one round trip."""
    with connection.cursor() as cur:
        cur.execute(f"""SELECT {HOLIDAYS_VERSION_SQL},
                               ARRAY(SELECT h.date FROM routing_holiday h WHERE h.date > %s AND h.date <= %s),
                               ARRAY(SELECT w.year FROM routing_workingweek w ORDER BY w.year),
                               ARRAY(SELECT w.days FROM routing_workingweek w ORDER BY w.year)""", [after, until])
        version, holidays, years, days = cur.fetchone()
    return version, set(holidays), list(zip(years, days))
