"""Deadlines in working days: weekends and the holidays in routing.Holiday (data, imported) do not count."""
import datetime

from django.utils import timezone

from .models import Holiday


def add_working_days(start: datetime.datetime, days: int) -> datetime.datetime:
    """The moment `days` working days after `start`, at the same local time of day.

    Counting starts on the day after `start`'s local date: Friday 10:00 + 1 is Monday 10:00 (or the next working
    day after a holiday Monday). A complaint filed on a day off is counted the same way: Saturday + 1 is Monday.
    """
    if days < 0:
        raise ValueError("days must be >= 0")
    local = timezone.localtime(start) if timezone.is_aware(start) else start
    day = local.date()
    # Enough holidays for any sane deadline: the span grows with the days asked for.
    holidays = set(Holiday.objects.filter(date__gt=day, date__lte=day + datetime.timedelta(days=days * 2 + 60))
                   .values_list("date", flat=True))
    left = days
    while left:
        day += datetime.timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            left -= 1
    # timetz() keeps the zone (zoneinfo), which gives the right offset for the new date.
    return datetime.datetime.combine(day, local.timetz())
