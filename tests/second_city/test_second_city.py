"""A second city (issue 12 §4): tests/second_city/city_checks.py run in a pytest of their own, against the test city
of city.txt (loaded only through `import_dataset` and its specs) in a database of its own, with the city's profile
(city.env: English only, Europe/Helsinki, its own site name and mail sender) instead of the demo's."""
import os
import subprocess
import sys

import psycopg2
from django.conf import settings

from tests.second_city.city import ENV

CHECKS = "tests/second_city/city_checks.py"


def drop_database(name):
    db = settings.DATABASES["default"]
    conn = psycopg2.connect(dbname="postgres", user=db["USER"], password=db.get("PASSWORD") or None,
                            host=db["HOST"], port=db["PORT"] or None)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


def test_the_second_city_passes_its_checks_in_english():
    env = {**os.environ, **ENV}
    for name in ("LANGUAGE_CODE", "LANGUAGES", "TIME_ZONE", "OURCITY_SITE_NAME", "OURCITY_EMAIL_FROM"):
        env.pop(name, None)  # the city's profile says these
    if os.environ.get("DATABASE_URL"):
        env["OURCITY_DB_NAME"] = ENV["OURCITY_DB_NAME"]  # overrides the URL's database name (README)
    try:
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--create-db",
                              CHECKS], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=1800)
    finally:
        drop_database("test_" + ENV["OURCITY_DB_NAME"])
    output = (run.stdout + run.stderr)[-8000:]
    assert run.returncode == 0, output
    assert " passed" in run.stdout and " failed" not in run.stdout and " error" not in run.stdout, output
