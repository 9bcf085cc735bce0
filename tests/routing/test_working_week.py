"""The working week is data (issue 12): routing.WorkingWeek rows per year, imported through the pipeline's target
`working_weeks` (importers/working_weeks.py), and deadlines skip the days a city does not work."""
import datetime
from zoneinfo import ZoneInfo

import pytest

from importers.core import run_import
from importers.errors import ImportFailure
from importers.working_weeks import parse_days
from routing.deadlines import add_working_days
from routing.models import Holiday, WorkingWeek

pytestmark = pytest.mark.django_db
TZ = ZoneInfo("Asia/Jerusalem")
SPEC = {"dataset": "t-week", "target": "working_weeks", "key": "year", "year": "year", "days": "days"}


def at(y, m, d, hour=10):
    return datetime.datetime(y, m, d, hour, 30, tzinfo=TZ)


def weeks(tmp_path, text, commit=True, **spec):
    path = tmp_path / "weeks.csv"
    path.write_text(text, encoding="utf-8")
    return run_import(path, {**SPEC, **spec}, commit=commit)


@pytest.fixture
def no_weeks(db):
    WorkingWeek.objects.all().delete()
    Holiday.objects.filter(date__year__in=(2030, 2031, 2032)).delete()


def test_the_demo_city_works_monday_to_friday():
    assert list(WorkingWeek.objects.values_list("year", "days")) == [(2026, "12345")]


@pytest.mark.parametrize("text, expected", [
    ("mon-fri", "12345"), ("Mon,Tue,Wed,Thu,Fri", "12345"), ("sun-thu", "12347"), ("SUNDAY-thursday", "12347"),
    ("1-5", "12345"), ("1 2 3 4 5 6", "123456"), ("sat-sun", "67"), ("fri-mon", "1567"), ("mo-sa", "123456"),
    ("wed", "3"), ("mon-fri, sat", "123456"), ("7", "7"), ("mon-mon", "1"),
])
def test_days_are_written_as_names_numbers_or_ranges(text, expected):
    assert parse_days(text) == expected


def test_deadlines_follow_the_imported_working_week(tmp_path, no_weeks):
    # 2030-01-03 is a Thursday.
    assert add_working_days(at(2030, 1, 3), 1) == at(2030, 1, 4)  # no week loaded: Monday to Friday
    result = weeks(tmp_path, "year,days\n2030,sun-thu\n")
    assert result.counts["created"] == 1
    assert add_working_days(at(2030, 1, 3), 1) == at(2030, 1, 6)  # Thursday + 1: Sunday (Friday, Saturday off)
    assert add_working_days(at(2030, 1, 4), 1) == at(2030, 1, 6)  # Friday + 1: Sunday
    assert add_working_days(at(2030, 1, 3), 5) == at(2030, 1, 10)
    assert add_working_days(at(2031, 1, 2), 1) == at(2031, 1, 5)  # a row holds for the years after it too


def test_a_row_per_year_changes_the_week_from_that_year(tmp_path, no_weeks):
    """The UAE moved its weekend from Friday-Saturday to Saturday-Sunday in 2022: each year its own week."""
    weeks(tmp_path, "year,days\n2030,sun-thu\n2031,mon-fri\n")
    assert add_working_days(at(2029, 12, 27), 1) == at(2029, 12, 30)  # before the first row: the first row's week
    assert add_working_days(at(2030, 12, 26), 1) == at(2030, 12, 29)  # Thursday 2030 + 1: Sunday
    assert add_working_days(at(2030, 12, 30), 2) == at(2031, 1, 1)  # Monday, Tuesday(2030) then Wednesday 2031
    assert add_working_days(at(2031, 1, 2), 1) == at(2031, 1, 3)  # Thursday 2031 + 1: Friday
    assert add_working_days(at(2031, 1, 3), 1) == at(2031, 1, 6)  # Friday 2031 + 1: Monday


def test_holidays_and_the_week_count_together(tmp_path, no_weeks):
    weeks(tmp_path, "year,days\n2030,mon-sat\n")
    Holiday.objects.create(date=datetime.date(2030, 1, 5), name="test")  # a Saturday
    assert add_working_days(at(2030, 1, 4), 1) == at(2030, 1, 7)  # Friday + 1: Saturday is a holiday, Sunday off


def test_a_dry_run_changes_nothing_and_a_full_import_retires_missing_years(tmp_path, no_weeks):
    result = weeks(tmp_path, "year,days\n2030,sun-thu\n", commit=False)
    assert result.counts["created"] == 1 and not WorkingWeek.objects.exists()
    weeks(tmp_path, "year,days\n2030,sun-thu\n2031,mon-fri\n")
    result = weeks(tmp_path, "year,days\n2030,sun-thu\n2031,mon-fri\n")
    assert (result.counts["created"], result.counts["updated"], result.counts["unchanged"]) == (0, 0, 2)
    result = weeks(tmp_path, "year,days\n2031,mon-sat\n", mode="full")
    assert (result.counts["updated"], result.counts["retired"]) == (1, 1)
    assert list(WorkingWeek.objects.values_list("year", "days")) == [(2031, "123456")]


@pytest.mark.parametrize("row, reason", [
    ("2030,", "no day of the week given"), ("2030,funday", "is not a day of the week"),
    ("2030,mon-xyz", "is not a day of the week"), ("2030,8", "is not a day of the week"),
    ("2030,0-4", "is not a day of the week"), ("2030,mon--fri", "is not a day of the week"),
    ("twenty,mon-fri", "is not a year"), ("1800,mon-fri", "is not a year"), ("99999,mon-fri", "is not a year"),
    ("2030.5,mon-fri", "is not a year"), ('"2030; DROP TABLE x",mon-fri', "is not a year"),
])
def test_a_bad_row_is_rejected_with_its_reason_and_the_rest_load(tmp_path, no_weeks, row, reason):
    result = weeks(tmp_path, f"year,days\n2032,mon-fri\n{row}\n")
    assert result.counts["rejected"] == 1 and reason in result.rejects[0][2]
    assert list(WorkingWeek.objects.values_list("year", "days")) == [(2032, "12345")]


def test_a_duplicate_year_is_rejected(tmp_path, no_weeks):
    result = weeks(tmp_path, "year,days\n2030,mon-fri\n2030,sun-thu\n")
    assert result.counts["rejected"] == 1 and list(WorkingWeek.objects.values_list("days", flat=True)) == ["12345"]


@pytest.mark.parametrize("spec, message", [
    ({"days": None}, "'days' is required"), ({"year": None}, "'year' is required"),
    ({"weekend": "sat"}, "weekend"),
])
def test_a_bad_spec_is_refused_before_anything_is_read(tmp_path, no_weeks, spec, message):
    raw = {k: v for k, v in {**SPEC, **spec}.items() if v is not None}
    path = tmp_path / "weeks.csv"
    path.write_text("year,days\n2030,mon-fri\n", encoding="utf-8")
    with pytest.raises(ImportFailure, match=message):
        run_import(path, raw, commit=True)
    assert not WorkingWeek.objects.exists()
