"""The embedded PostgreSQL cluster (scripts/pg.sh): only its owner, root and the group `ourcity` reach its socket,
only the owner is the superuser, and the application connects as a role of its own that is no superuser.

The script runs here on a scratch checkout of its own (a cluster of its own, stopped and removed at the end), so
the tests can also turn it into a cluster of the old kind (trust, a world-writable socket, objects owned by the
superuser) and see the next start bring it up to the rules. Run as root, as `make test` runs on CI: the other
local user is `nobody`.
"""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

BASE = Path(settings.BASE_DIR)
PGBIN = Path("/usr/lib/postgresql/15/bin")
APP_ROLE = "geo_ourcity"


class Scratch:
    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="pg-test-", dir=BASE / "var"))
        self.root.chmod(0o755)
        (self.root / "scripts").mkdir()
        shutil.copy(BASE / "scripts" / "pg.sh", self.root / "scripts" / "pg.sh")
        self.pg = self.root / "var" / "pg"
        self.run_dir = self.pg / "run"
        self.socket = self.run_dir / ".s.PGSQL.5432"
        self.data = self.pg / "data"

    def script(self, *args):
        environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "OURCITY_DB_NAME")}
        return subprocess.run(["bash", str(self.root / "scripts" / "pg.sh"), *args], env=environment,
                              capture_output=True, text=True, timeout=300)

    def psql(self, sql, *, user="postgres", as_os=None, group=None, db="geo_ourcity"):
        """Run `sql` through psql as the OS user `as_os` (root: this process) -> CompletedProcess."""
        command = [str(PGBIN / "psql"), "-h", str(self.run_dir), "-U", user, "-d", db, "-XqAt", "-c", sql]
        if as_os:
            command = ["runuser", "-u", as_os, *(["-g", group] if group else []), "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd="/")

    def superuser(self, sql, db="geo_ourcity"):
        done = self.psql(sql, as_os="postgres", db=db)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def postmaster_pid(self):
        return (self.data / "postmaster.pid").read_text().split()[0]


@pytest.fixture(scope="module")
def cluster():
    assert os.geteuid() == 0, "these tests switch to other local users: run them as root (as make test on CI)"
    scratch = Scratch()
    try:
        started = scratch.script("start")
        assert started.returncode == 0, started.stderr
        yield scratch
    finally:
        scratch.script("stop")
        shutil.rmtree(scratch.pg.resolve(), ignore_errors=True)
        shutil.rmtree(scratch.root, ignore_errors=True)


def assert_rules_hold(cluster):
    for path in (cluster.pg.resolve(), cluster.run_dir, cluster.socket):
        assert path.stat().st_mode & 0o007 == 0, f"{path}: {oct(path.stat().st_mode)}"
    assert cluster.socket.stat().st_mode & 0o777 == 0o770
    assert cluster.socket.group() == "ourcity"


def test_the_socket_and_its_directories_are_not_for_everyone(cluster):
    assert_rules_hold(cluster)


@pytest.mark.parametrize("role", ["postgres", APP_ROLE, "nobody"])
def test_another_local_user_can_not_connect_at_all(cluster, role):
    done = cluster.psql("SELECT 1", user=role, as_os="nobody")
    assert done.returncode != 0
    assert "Permission denied" in done.stderr


def test_only_the_clusters_owner_is_the_superuser(cluster):
    as_root = cluster.psql("SELECT 1")  # root reaches the socket, but is not the owner
    assert as_root.returncode != 0 and "Peer authentication failed" in as_root.stderr
    assert cluster.superuser("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == "t"
    in_group = cluster.psql("SELECT 1", as_os="nobody", group="ourcity")
    assert in_group.returncode != 0 and "Peer authentication failed" in in_group.stderr


def test_the_group_and_root_connect_as_the_application_which_is_no_superuser(cluster):
    for who in ({"as_os": "nobody", "group": "ourcity"}, {}):
        done = cluster.psql("SELECT current_user, rolsuper, rolcreaterole, rolcreatedb, "
                            "pg_get_userbyid(d.datdba) FROM pg_roles, pg_database d "
                            "WHERE rolname = current_user AND d.datname = current_database()", user=APP_ROLE, **who)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"{APP_ROLE}|f|f|t|{APP_ROLE}"
    refused = cluster.psql("CREATE ROLE intruder", user=APP_ROLE)  # NOCREATEROLE
    assert refused.returncode != 0 and "permission denied" in refused.stderr.lower()


def test_an_old_cluster_is_brought_up_to_the_rules_and_a_second_start_changes_nothing(cluster):
    # What an older scripts/pg.sh left: trust for everyone, a socket anyone may use, the superuser owning all.
    (cluster.data / "pg_hba.conf").write_text("local all all trust\n")
    (cluster.data / "ourcity.conf").write_text(f"unix_socket_directories = '{cluster.run_dir}'\n"
                                               "unix_socket_permissions = 0777\n")
    cluster.run_dir.chmod(0o755)
    cluster.pg.resolve().chmod(0o755)
    cluster.superuser("CREATE TABLE old_table (id serial PRIMARY KEY); CREATE VIEW old_view AS SELECT * FROM old_table;"
                      "CREATE FUNCTION old_function() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    cluster.superuser("ALTER DATABASE geo_ourcity OWNER TO postgres", db="postgres")
    subprocess.run(["runuser", "-u", "postgres", "--", str(PGBIN / "pg_ctl"), "-D", str(cluster.data), "-w",
                    "-m", "fast", "restart", "-l", str(cluster.pg / "postgres.log")],
                   check=True, capture_output=True, cwd="/")
    hole = cluster.psql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", as_os="nobody")
    assert hole.stdout.strip() == "t"  # the hole this fixes: any local user was the superuser

    upgraded = cluster.script("start")
    assert upgraded.returncode == 0, upgraded.stderr
    assert_rules_hold(cluster)
    assert "Permission denied" in cluster.psql("SELECT 1", as_os="nobody").stderr
    assert "trust" not in (cluster.data / "pg_hba.conf").read_text().split("# TYPE")[1]
    owners = cluster.superuser(
        "SELECT string_agg(DISTINCT o, ',') FROM ("
        " SELECT pg_get_userbyid(relowner) o FROM pg_class WHERE relname IN ('old_table', 'old_view', 'old_table_id_seq')"
        " UNION ALL SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'old_function'"
        " UNION ALL SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'geo_ourcity') x")
    assert owners == APP_ROLE
    # The application, as its own role, can change what it now owns (as migrations do).
    altered = cluster.psql("ALTER TABLE old_table ADD COLUMN note text; DROP VIEW old_view; DROP TABLE old_table;"
                           "DROP FUNCTION old_function()", user=APP_ROLE)
    assert altered.returncode == 0, altered.stderr

    pid = cluster.postmaster_pid()
    again = cluster.script("start")
    assert again.returncode == 0 and again.stdout == "" and again.stderr == ""
    assert cluster.postmaster_pid() == pid  # no restart when nothing changed
    assert_rules_hold(cluster)


def test_the_tests_own_connection_is_the_application_role_and_no_superuser(db):
    with connection.cursor() as cur:
        cur.execute("SELECT current_user, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
        user, superuser, createrole = cur.fetchone()
    assert user == settings.DATABASES["default"]["USER"]
    assert (superuser, createrole) == (False, False)
