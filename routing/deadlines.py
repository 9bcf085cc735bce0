"""Deadlines in working days: the days of the week the city does not work (routing.WorkingWeek) and the holidays
in routing.Holiday (both data, imported) do not count."""
import bisect
import datetime

from django.db import connection
from django.utils import timezone

# The working week while none is loaded (the ISO weekdays 1-5): what most of the world works.
DEFAULT_DAYS = "12345"


def add_working_days(start: datetime.datetime, days: int) -> datetime.datetime:
    """The moment `days` working days after `start`, at the same local time of day.

    Counting starts on the day after `start`'s local date: Friday 10:00 + 1 is Monday 10:00 (or the next working
    day after a holiday Monday). A complaint filed on a day off is counted the same way: Saturday + 1 is Monday.
    """
    if days < 0:
        raise ValueError("days must be >= 0")
    local = timezone.localtime(start) if timezone.is_aware(start) else start
    day = local.date()
    # Enough holidays for any sane deadline: the span grows with the days asked for (so does a short working week).
    holidays, weeks = _calendar(day, day + datetime.timedelta(days=days * 7 + 60))
    works = working_week(weeks)
    left = days
    while left:
        day += datetime.timedelta(days=1)
        if day.isoweekday() in works(day.year) and day not in holidays:
            left -= 1
    # timetz() keeps the zone (zoneinfo), which gives the right offset for the new date.
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
    """(the holiday dates in (after, until], [(year, days)] of every working week) in one round trip."""
    with connection.cursor() as cur:
        cur.execute("""SELECT date, NULL::smallint, NULL FROM routing_holiday WHERE date > %s AND date <= %s
                       UNION ALL SELECT NULL, year, days FROM routing_workingweek ORDER BY 2""", [after, until])
        rows = cur.fetchall()
    return {d for d, _, _ in rows if d is not None}, [(y, days) for _, y, days in rows if y is not None]
