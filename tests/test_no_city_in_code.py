"""No code path names Moscow outside the demo data and its loader (issue 12): a city is data (data/, imported) and
environment (a profile, geo_ourcity/env.py), never code. This greps every file of the repository that is code."""
import re
import subprocess

import pytest

from geo_ourcity.env import BASE_DIR

# What names one city: its name in any spelling, its ring road, its time zone or zone abbreviation, its portals'
# domains (data.mos.ru, whose export format the importers read, is a file format like GeoJSON), its centre's
# coordinates, and defaults that would make Russian or a Moscow zone the language or time of any city.
CITY = re.compile(r"""moscow|moskva|москв|мкад|mkad|\bmsk\b|(?<!data\.)mos\.ru|наш\ город
                      |\b55\.[67]\d*\s*,\s*37\.[4-8]|\b37\.[4-8]\d*\s*,\s*55\.[67]
                      |(LANGUAGE_CODE|TIME_ZONE)["']?\s*(=|,)\s*["'](ru|europe/)""", re.I | re.X)
# The demo city is these files' business: its data and the code that loads it, the benchmarks run on it, and
# the tests and documents that describe it.
DEMO = re.compile(r"""^(data/|tests/|docs/|bench/|.*\.md$|.*/locale/|locale/
                      |geo_ourcity/demo\.py$|staff/demo\.py$|importers/management/commands/(load_demo|demo_banner)\.py$
                      |complaints/management/commands/load_demo_complaints\.py$)""", re.X)
CODE = re.compile(r"(\.(py|html|js|css|sh|lua|sql|txt|template|ini|cfg|toml|yaml|yml|json)$|(^|/)Makefile$)")


def code_files():
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=BASE_DIR, capture_output=True,
                           text=True, check=True).stdout.split("\n")
    return [n for n in names if n and CODE.search(n) and not DEMO.match(n) and (BASE_DIR / n).is_file()
            and n != "package-lock.json"]


def test_there_is_code_to_check():
    files = code_files()
    assert {"geo_ourcity/settings.py", "web/folium_map.py", "complaints/mails.py", "Makefile"} <= set(files)
    assert not any(f.startswith(("data/", "tests/")) for f in files)


def test_no_code_names_the_demo_city():
    found = []
    for name in code_files():
        for number, line in enumerate((BASE_DIR / name).read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if CITY.search(line):
                found.append(f"{name}:{number}: {line.strip()[:120]}")
    assert found == [], "a city named in code: move it to data/ or the environment (geo_ourcity/env.py):\n" + \
        "\n".join(found)


@pytest.mark.parametrize("line", [
    'CENTER = (55.7558, 37.6173)  # Red Square', 'TIME_ZONE = env_str("TIME_ZONE", "Europe/Moscow")',
    'LANGUAGE_CODE = "ru"', "default_lon, default_lat = 37.62, 55.75", "# the MKAD ring", "tz = 'MSK'",
    'DEFAULT_FROM_EMAIL = "Наш город <no-reply@example.org>"', "url = 'https://www.mos.ru/'", "Москва, ул. Тверская",
    "TIME_ZONE', 'europe/moscow'",
])
def test_the_check_sees_a_city(line):
    assert CITY.search(line)


@pytest.mark.parametrize("line", ['format="data.mos.ru JSON"', "TIME_ZONE = env_time_zone(\"TIME_ZONE\", \"UTC\")",
                                  "lat 55.0, lon 12.5", "LANGUAGE_CODE, LANGUAGES = env_languages()"])
def test_the_check_passes_what_names_no_city(line):
    assert not CITY.search(line)
