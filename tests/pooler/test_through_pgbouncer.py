"""The tests that cover Open311, staff actions, imports and re-routing, run again through a real pgbouncer in
transaction mode (Debian 12's 1.18: it keeps no prepared statements, and a client's consecutive transactions may
run on different server connections), in a pytest of their own with the pooler's settings.

tests/open311/test_live.py's 50 simultaneous POSTs are among them: before the code stopped preparing statements
on the session, some of those answered 500 "prepared statement ... already exists" through the pooler.
"""
import os
import subprocess
import sys

import psycopg2
from django.conf import settings

# The pooled run's database (its test database is test_<this>), apart from this session's own.
POOLED_DB = "geo_ourcity_pooled"
MODULES = ["tests/open311", "tests/staff", "tests/importers", "tests/routing", "tests/pooler/pooled_checks.py"]


def drop_database(name):
    """Directly, not through pgbouncer (which may still hold idle server connections to it)."""
    db = settings.DATABASES["default"]
    conn = psycopg2.connect(dbname="postgres", user=db["USER"], password=db.get("PASSWORD") or None,
                            host=db["HOST"], port=db["PORT"] or None)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


def test_open311_staff_import_and_reroute_tests_pass_through_pgbouncer(pgbouncer):
    test_db = "test_" + POOLED_DB
    drop_database(test_db)
    env = {**os.environ, "DATABASE_URL": pgbouncer.url(POOLED_DB), "OURCITY_DB_POOLED": "1",
           "OURCITY_TEST_PGBOUNCER": f"{pgbouncer.socket_dir}:{pgbouncer.port}"}
    env.pop("OURCITY_DB_NAME", None)
    try:
        # --reuse-db: the pooled run does not drop its test database itself (pgbouncer holds server connections
        # to it); it is dropped here, directly.
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--reuse-db",
                              *MODULES], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True,
                             timeout=1800)
        stats = {row["database"]: row for row in pgbouncer.admin("SHOW STATS")}
    finally:
        drop_database(test_db)
    output = (run.stdout + run.stderr)[-6000:]
    assert run.returncode == 0, output
    assert " passed" in run.stdout and " failed" not in run.stdout and " error" not in run.stdout, output
    # The run's statements went through the pooler: thousands of transactions on its test database.
    assert stats[test_db]["total_xact_count"] > 1000, stats
