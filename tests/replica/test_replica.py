"""Beside a real streaming replica: the reads that may be a little stale (tiles, popups, Open311 GET lists,
statistics) come from it, while a resident who has just filed a complaint and staff after an action read the
primary. The checks (tests/replica/replica_checks.py) run in a pytest of their own with DATABASE_REPLICA_URL set to
the standby, against a test database of their own on the primary (streamed to the standby).
"""
import os
import subprocess
import sys

from django.conf import settings

from tests.pooler.test_through_pgbouncer import drop_database

REPLICATED_DB = "geo_ourcity_replicated"


def test_stale_reads_go_to_the_replica_and_own_writes_to_the_primary(standby):
    test_db = "test_" + REPLICATED_DB
    drop_database(test_db)
    env = {**os.environ, "OURCITY_DB_NAME": REPLICATED_DB,
           "DATABASE_REPLICA_URL": f"postgres://postgres@:5432/{REPLICATED_DB}?host={standby}"}
    try:
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--reuse-db",
                              "tests/replica/replica_checks.py"], cwd=settings.BASE_DIR, env=env,
                             capture_output=True, text=True, timeout=900)
    finally:
        drop_database(test_db)
    output = (run.stdout + run.stderr)[-6000:]
    assert run.returncode == 0, output
    assert " passed" in run.stdout and " failed" not in run.stdout and " error" not in run.stdout, output
