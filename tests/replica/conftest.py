"""A real streaming replica of the embedded cluster, for the session: pg_basebackup -R from the primary into a
directory of its own under var/, started as a hot standby on a unix socket of its own (Debian's PostgreSQL 15).
Stopped and removed at the end.
"""
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from django.conf import settings

PGBIN = Path("/usr/lib/postgresql/15/bin")


def as_owner(*command):
    """Run as the cluster's owner: `postgres` when we are root (PostgreSQL refuses to run as root)."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *map(str, command)], check=True, capture_output=True, text=True)


@pytest.fixture(scope="session")
def standby():
    """The standby's unix socket directory."""
    primary = settings.DATABASES["default"]
    root = Path(settings.BASE_DIR) / "var" / f"replica-{uuid.uuid4().hex[:8]}"
    data, run = root / "data", root / "run"
    run.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(run, "postgres", "postgres")
    as_owner(PGBIN / "pg_basebackup", "-h", primary["HOST"], "-p", primary["PORT"] or "5432", "-U", "postgres",
             "-D", data, "-R", "-X", "stream", "-c", "fast")
    with open(data / "postgresql.auto.conf", "a") as conf:  # after the primary's: these win
        conf.write(f"unix_socket_directories = '{run}'\nlisten_addresses = ''\nhot_standby = on\n"
                   "shared_buffers = 64MB\n")
    try:
        as_owner(PGBIN / "pg_ctl", "-D", data, "-l", root / "standby.log", "-w", "-t", "120", "start")
        yield str(run)
    finally:
        subprocess.run([*(["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []),
                        str(PGBIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
