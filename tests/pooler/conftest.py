"""A real pgbouncer (Debian's, 1.18) in transaction mode in front of the embedded cluster, for the session.

scripts/pgbouncer.sh starts it on a unix socket in a directory of its own under var/ (a port number from the OS
names the socket); it is stopped and its directory removed at the end.
"""
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
from django.conf import settings

SCRIPT = Path(settings.BASE_DIR) / "scripts" / "pgbouncer.sh"


@dataclass
class Pgbouncer:
    dir: Path
    port: int

    @property
    def socket_dir(self):
        return str(self.dir / "run")

    def url(self, dbname):
        """A DATABASE_URL through it."""
        return f"postgres://postgres@:{self.port}/{dbname}?host={self.socket_dir}"

    def admin(self, command):
        """Rows of an admin console command (SHOW CLIENTS, SHOW STATS, ...) as dicts."""
        conn = psycopg2.connect(dbname="pgbouncer", user="postgres", host=self.socket_dir, port=self.port)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(command)
                names = [d.name for d in cur.description]
                return [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            conn.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pgbouncer():
    bouncer = Pgbouncer(Path(settings.BASE_DIR) / "var" / f"pgbouncer-{uuid.uuid4().hex[:8]}", free_port())
    subprocess.run([str(SCRIPT), "start", str(bouncer.dir), str(bouncer.port)], check=True)
    try:
        yield bouncer
    finally:
        subprocess.run([str(SCRIPT), "stop", str(bouncer.dir)], check=True)
        shutil.rmtree(bouncer.dir, ignore_errors=True)
