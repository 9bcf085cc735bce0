"""A real streaming replica of the embedded cluster, for the session: scripts/replica.sh makes it (pg_basebackup -R
from the primary into a directory of its own under var/, started as a hot standby on a unix socket of its own,
Debian's PostgreSQL 15). Stopped and removed at the end.
"""
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from django.conf import settings

SCRIPT = Path(settings.BASE_DIR) / "scripts" / "replica.sh"


@pytest.fixture(scope="session")
def standby():
    """The standby's unix socket directory."""
    root = Path(settings.BASE_DIR) / "var" / f"replica-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "OURCITY_PG_RUN": settings.DATABASES["default"]["HOST"]}  # the primary's socket
    try:
        run = subprocess.run([str(SCRIPT), "start", str(root)], env=env, check=True, capture_output=True, text=True)
        yield run.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(SCRIPT), "stop", str(root)], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
