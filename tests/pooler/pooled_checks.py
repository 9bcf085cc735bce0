"""Run only inside tests/pooler/test_through_pgbouncer.py's pooled pytest (not named test_*: the main run does not
collect it): that run's database connections really go through the pgbouncer started for it, in transaction mode.
"""
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from .conftest import Pgbouncer

pytestmark = pytest.mark.django_db


@pytest.fixture
def bouncer():
    where = os.environ.get("OURCITY_TEST_PGBOUNCER")
    assert where, "run through tests/pooler/test_through_pgbouncer.py"
    socket_dir, port = where.rsplit(":", 1)
    return Pgbouncer(dir=Path(socket_dir).parent, port=int(port))


def test_the_connection_is_a_pgbouncer_client_in_transaction_mode(bouncer):
    db = settings.DATABASES["default"]
    assert (db["HOST"], int(db["PORT"])) == (bouncer.socket_dir, bouncer.port)
    assert db["DISABLE_SERVER_SIDE_CURSORS"] is True
    with connection.cursor() as cur:
        cur.execute("SELECT current_database()")
        name = cur.fetchone()[0]
    assert [c for c in bouncer.admin("SHOW CLIENTS") if c["database"] == name], "no pgbouncer client on it"
    assert {c["key"]: c["value"] for c in bouncer.admin("SHOW CONFIG")}["pool_mode"] == "transaction"
