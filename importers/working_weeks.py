"""Target `working_weeks`: the days of the week a city works, per year (routing.WorkingWeek), for deadlines.

Self-contained: the spec keys are `year` (a whole year, 1900-2200; the row key) and `days`, the days worked, as
day names or ISO numbers, single or as ranges, comma or space separated: "mon-fri", "Mon,Tue,Wed,Thu,Fri",
"sun-thu" (a range may wrap round the week), "1-5", "1 2 3 4 5 6". A row holds from its year until the next row's
year (routing.deadlines). Read, validated, staged and upserted like the other catalogue targets (core.py calls
`prepare` and `load`); a full import retires the dataset's years that the file no longer has.
"""
import re

import numpy as np
import pandas as pd

from . import load as load_sql
from .limits import reject_unstorable
from .prepare import evaluate, finish, prepare_keys

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
    frame = source.frame
    keys, rej = prepare_keys(spec, source)
    raw_year = evaluate(spec.values["year"], frame, n)
    years = pd.to_numeric(raw_year.str.strip(), errors="coerce")
    bad_year = years.isna().to_numpy() | (years % 1 != 0).to_numpy() | ~years.between(*YEARS).to_numpy()
    rej.reject(bad_year, lambda i: f"year {raw_year.iloc[i]!r} is not a year from {YEARS[0]} to {YEARS[1]}")
    rej.reject(years.duplicated(keep="first").to_numpy() & ~bad_year, lambda i: f"duplicate year {raw_year.iloc[i]}")
    raw_days = evaluate(spec.values["days"], frame, n)
    parsed, problems = [], {}
    for i, text in enumerate(raw_days):
        try:
            parsed.append(parse_days(text))
        except ValueError as exc:
            parsed.append("")
            problems[i] = f"days {text!r}: {exc}"
    rej.reject(np.array([i in problems for i in range(n)], dtype=bool), lambda i: problems[i])
    columns = {"source_key": keys, "year": years.fillna(0).astype(int).astype(str).to_numpy(),
               "days": np.array(parsed, dtype=object)}
    reject_unstorable(rej, columns, FIELDS)
    return finish(rej, columns, {})


def load(cur, prepared, dataset_id, *, full, commit, progress=None):
    """Stage the rows, count what would change; on a commit, write it. The counts, as the other targets give."""
    load_sql.new_stage(cur)
    cur.execute("CREATE TEMP TABLE import_stage (row_no integer, source_key text, year smallint, days text) "
                "ON COMMIT DROP")
    load_sql.copy_rows(cur, "import_stage", prepared.rows, ["row_no", "source_key", "year", "days"], progress)
    cur.execute("""SELECT count(*) FILTER (WHERE w.id IS NULL),
                          count(*) FILTER (WHERE w.id IS NOT NULL AND (w.days <> s.days
                                           OR w.dataset_id IS DISTINCT FROM %s)),
                          count(*)
                   FROM import_stage s LEFT JOIN routing_workingweek w ON w.year = s.year""", [dataset_id])
    created, updated, total = cur.fetchone()
    retired = 0
    missing = """FROM routing_workingweek w WHERE w.dataset_id = %s
                 AND NOT EXISTS (SELECT 1 FROM import_stage s WHERE s.year = w.year)"""
    if full:
        cur.execute(f"SELECT count(*) {missing}", [dataset_id])
        retired = cur.fetchone()[0]
    if commit:
        cur.execute("""INSERT INTO routing_workingweek (year, days, dataset_id) SELECT year, days, %s FROM import_stage
                       ON CONFLICT (year) DO UPDATE SET days = EXCLUDED.days, dataset_id = EXCLUDED.dataset_id
                       WHERE routing_workingweek.days <> EXCLUDED.days
                          OR routing_workingweek.dataset_id IS DISTINCT FROM EXCLUDED.dataset_id""", [dataset_id])
        if full:
            cur.execute(f"DELETE {missing}", [dataset_id])
    return {"created": created, "updated": updated, "unchanged": total - created - updated, "retired": retired}
