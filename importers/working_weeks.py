"""Target `working_weeks`: the days of the week a city works, per year (routing.WorkingWeek), for deadlines.

Self-contained: the spec keys are `year` (a whole year, 1900-2200; the row key) and `days`, the days worked, as
day names or ISO numbers, single or as ranges, comma or space separated: "mon-fri", "Mon,Tue,Wed,Thu,Fri",
"sun-thu" (a range may wrap round the week), "1-5", "1 2 3 4 5 6". A row holds from its year until the next row's
year (routing.deadlines). Read, validated, staged, classified and applied like the other catalogue targets
(importers.targets.WorkingWeeksTarget); a full import retires the dataset's years that the file no longer has.
"""
import re

import numpy as np

from . import load as load_sql
from .limits import reject_unstorable
from .prepare import duplicated, evaluate, finish, prepare_keys

FIELDS = {"days": "routing.WorkingWeek.days"}
DAY_NAMES = {name: i + 1 for i, names in enumerate([
    ("mon", "monday", "mo"), ("tue", "tuesday", "tu"), ("wed", "wednesday", "we"), ("thu", "thursday", "th"),
    ("fri", "friday", "fr"), ("sat", "saturday", "sa"), ("sun", "sunday", "su")]) for name in names}
YEARS = (1900, 2200)
_TOKEN = re.compile(r"[\s,;]+")


def _day(word):
    word = word.strip().lower()
    if word in DAY_NAMES:
        return DAY_NAMES[word]
    if word in {"1", "2", "3", "4", "5", "6", "7"}:
        return int(word)
    raise ValueError(f"{word!r} is not a day of the week (mon ... sun, or 1 ... 7 from Monday)")


def parse_days(text):
    """ "mon-fri" -> "12345"; "sun-thu" -> "12347". ValueError (one line) for anything else, or for no day."""
    days = set()
    for token in filter(None, _TOKEN.split(str(text).strip())):
        first, sep, last = token.partition("-")
        if not sep:
            days.add(_day(first))
            continue
        a, b = _day(first), _day(last)
        span = (b - a) % 7
        days.update((a - 1 + i) % 7 + 1 for i in range(span + 1))
    if not days:
        raise ValueError("no day of the week given")
    return "".join(str(d) for d in sorted(days))


def prepare(spec, source):
    n = len(source)
    table = source.table
    keys, rej = prepare_keys(spec, source)
    raw_year = evaluate(spec.values["year"], table, n)
    years = [_year(text) for text in raw_year]
    bad_year = np.array([y is None for y in years], dtype=bool)
    rej.reject(bad_year, lambda i: f"year {raw_year[i]!r} is not a year from {YEARS[0]} to {YEARS[1]}")
    rej.reject(duplicated(years) & ~bad_year, lambda i: f"duplicate year {raw_year[i]}")
    raw_days = evaluate(spec.values["days"], table, n)
    parsed, problems = [], {}
    for i, text in enumerate(raw_days):
        try:
            parsed.append(parse_days(text))
        except ValueError as exc:
            parsed.append("")
            problems[i] = f"days {text!r}: {exc}"
    rej.reject(np.array([i in problems for i in range(n)], dtype=bool), lambda i: problems[i])
    columns = {"source_key": keys, "year": np.array([str(y or 0) for y in years], dtype=object),
               "days": np.array(parsed, dtype=object)}
    reject_unstorable(rej, columns, FIELDS)
    return finish(rej, columns, {})


def _year(text):
    try:
        value = float(str(text).strip())
    except ValueError:
        return None
    if value != value or value % 1 or not YEARS[0] <= value <= YEARS[1]:
        return None
    return int(value)


def stage(cur, prepared, progress=None):
    load_sql.new_stage(cur)
    cur.execute("CREATE TEMP TABLE import_stage (row_no integer, source_key text, year smallint, days text, "
                "state text) ON COMMIT DROP")
    load_sql.copy_rows(cur, "import_stage", prepared.rows, ["row_no", "source_key", "year", "days"], progress)


def classify(cur, dataset_id, full):
    """Each staged year created, updated or unchanged; on a full import, the dataset's years the file no longer has
    retired. The counts are these marks (load.count_marks), which apply() writes."""
    load_sql._mark(cur, "import_stage", "row_no", """
        SELECT s.row_no, CASE WHEN w.id IS NULL THEN 'created'
            WHEN w.days <> s.days OR w.dataset_id IS DISTINCT FROM %s THEN 'updated' ELSE 'unchanged' END AS state
        FROM import_stage s LEFT JOIN routing_workingweek w ON w.year = s.year""", [dataset_id])
    if full:
        load_sql._retire(cur, """SELECT w.id FROM routing_workingweek w WHERE w.dataset_id = %s
                                 AND NOT EXISTS (SELECT 1 FROM import_stage s WHERE s.year = w.year)""", [dataset_id])
    return load_sql.count_marks(cur)


def apply(cur, dataset_id):
    cur.execute("""INSERT INTO routing_workingweek (year, days, dataset_id)
                   SELECT year, days, %s FROM import_stage WHERE state <> 'unchanged'
                   ON CONFLICT (year) DO UPDATE SET days = EXCLUDED.days, dataset_id = EXCLUDED.dataset_id""",
                [dataset_id])
    cur.execute("DELETE FROM routing_workingweek WHERE id IN (SELECT id FROM import_retire)")
