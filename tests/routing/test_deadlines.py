"""Deadlines in working days: weekends and the imported holiday list are skipped."""
import datetime
from zoneinfo import ZoneInfo

import pytest

from routing.deadlines import add_working_days
from routing.models import Holiday

pytestmark = pytest.mark.django_db
MSK = ZoneInfo("Europe/Moscow")


def at(y, m, d, hour=10):
    return datetime.datetime(y, m, d, hour, 30, tzinfo=MSK)


def test_the_demo_holiday_list_is_loaded():
    assert Holiday.objects.filter(date__year=2026).count() >= 14
    assert Holiday.objects.filter(date=datetime.date(2026, 5, 11)).exists()  # 9 May 2026 is a Saturday
    assert Holiday.objects.filter(date__year=2027).exists()


@pytest.mark.parametrize("start, days, expected", [
    (at(2026, 11, 23), 0, at(2026, 11, 23)),     # Monday + 0
    (at(2026, 11, 23), 1, at(2026, 11, 24)),     # Monday + 1: Tuesday
    (at(2026, 11, 27), 1, at(2026, 11, 30)),     # Friday + 1: Monday (the weekend skipped)
    (at(2026, 11, 28), 1, at(2026, 11, 30)),     # Saturday + 1: Monday
    (at(2026, 11, 23), 8, at(2026, 12, 3)),      # eight working days: a week and a half
    (at(2026, 5, 8), 1, at(2026, 5, 12)),        # Friday before the 9 May weekend: Monday 11 May is a holiday
    (at(2026, 11, 3), 1, at(2026, 11, 5)),       # 4 November is a holiday
    (at(2026, 12, 30), 1, at(2027, 1, 11)),      # 31 December and the New Year holidays are skipped
    (at(2026, 12, 29), 3, at(2027, 1, 12)),
])
def test_working_days_skip_weekends_and_holidays(start, days, expected):
    assert add_working_days(start, days) == expected


def test_a_new_holiday_is_data():
    start = at(2026, 11, 23)
    assert add_working_days(start, 1) == at(2026, 11, 24)
    Holiday.objects.create(date=datetime.date(2026, 11, 24), name="test")
    assert add_working_days(start, 1) == at(2026, 11, 25)


def test_the_result_is_in_local_time_whatever_the_input_zone():
    utc = datetime.datetime(2026, 11, 27, 22, 0, tzinfo=datetime.timezone.utc)  # Saturday 01:00 in Moscow
    result = add_working_days(utc, 1)
    assert result == at(2026, 11, 30, hour=1).replace(minute=0)
    assert result.utcoffset() == datetime.timedelta(hours=3)
