"""A failing or killed import leaves nothing of itself in the registry (transactional: real commits)."""
import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connection, transaction

from facilities.models import Dataset, Facility
from importers import load
from importers.core import PAUSE_ENV, run_import
from importers.errors import ImportFailure
from importers.models import ImportRun
from tests.conftest import point, write_geojson

SPEC = {"dataset": "atomic-lights", "target": "facilities", "key": "id", "type": "streetlight",
        "types": {"streetlight": {"ru": "Фонарь", "en": "Street light"}}, "owner": "mos", "name": "name"}


def lamps(path, n, prefix="Lamp"):
    rows = [({"id": str(i), "name": f"{prefix} {i}"}, point(37.60 + (i % 100) * 0.0005, 55.74 + (i // 100) * 0.0005))
            for i in range(n)]
    return write_geojson(path, rows)


def snapshot():
    return (sorted(Facility.objects.filter(dataset__code="atomic-lights").values_list("id", "source_key", "name",
                                                                                      "valid_to")),
            Dataset.objects.filter(code="atomic-lights").values_list("partition_table", flat=True).first())


def partitions():
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'facilities_facility'::regclass")
        return cur.fetchone()[0]


def test_a_failing_commit_leaves_the_registry_as_it_was(demo_city, tmp_path, monkeypatch):
    run_import(lamps(tmp_path / "v1.geojson", 500), SPEC, commit=True)
    before, parts = snapshot(), partitions()

    real_swap = load.swap_facilities

    def swap_then_fail(*args, **kwargs):
        real_swap(*args, **kwargs)  # the new generation is built and switched in ...
        raise RuntimeError("disk full")  # ... and then something breaks before COMMIT

    monkeypatch.setattr(load, "swap_facilities", swap_then_fail)
    with pytest.raises(ImportFailure, match="disk full.*nothing was changed"):
        run_import(lamps(tmp_path / "v2.geojson", 700, prefix="Changed"), SPEC, commit=True)
    assert snapshot() == before
    assert partitions() == parts
    run = ImportRun.objects.latest("pk")
    assert run.status == "failed" and "disk full" in run.error


def test_a_killed_import_leaves_nothing_and_is_recorded_as_aborted(demo_city, tmp_path):
    run_import(lamps(tmp_path / "v1.geojson", 500), SPEC, commit=True)
    before, parts = snapshot(), partitions()
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(__import__("json").dumps(SPEC), encoding="utf-8")
    env = {**os.environ, PAUSE_ENV: "60", "OURCITY_DB_NAME": settings.DATABASES["default"]["NAME"]}
    proc = subprocess.Popen([sys.executable, "manage.py", "import_dataset", str(lamps(tmp_path / "v2.geojson", 900,
                             prefix="Changed")), "--spec", str(spec_path), "--commit", "--quiet"],
                            cwd=settings.BASE_DIR, env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # the run has done all its work and waits just before COMMIT
        assert "paused before commit" in line, line
        running = ImportRun.objects.latest("pk")
        assert running.status == "running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the server notices the dead client and rolls its transaction back
    for _ in range(100):
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [running.backend_pid])
            if cur.fetchone()[0] == 0:
                break
        time.sleep(0.1)
    assert snapshot() == before
    assert partitions() == parts
    # the next run marks the dead one as aborted
    again = run_import(tmp_path / "v1.geojson", SPEC, commit=True)
    assert again.run.status == "no_change"
    running.refresh_from_db()
    assert running.status == "aborted"


def test_two_imports_of_one_dataset_do_not_interleave(demo_city, tmp_path):
    run_import(lamps(tmp_path / "v1.geojson", 50), SPEC, commit=True)
    env = {**os.environ, PAUSE_ENV: "60", "OURCITY_DB_NAME": settings.DATABASES["default"]["NAME"]}
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(__import__("json").dumps(SPEC), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "manage.py", "import_dataset", str(lamps(tmp_path / "v2.geojson", 60)),
                             "--spec", str(spec_path), "--commit", "--quiet"],
                            cwd=settings.BASE_DIR, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert "paused before commit" in proc.stderr.readline()
        with pytest.raises(ImportFailure, match="another import of dataset atomic-lights is running"):
            run_import(tmp_path / "v1.geojson", SPEC, commit=True)
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_a_new_datasets_first_import_does_not_block_readers(demo_city, tmp_path):
    spec = {**SPEC, "dataset": "atomic-new-lights"}
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(__import__("json").dumps(spec), encoding="utf-8")
    env = {**os.environ, PAUSE_ENV: "60", "OURCITY_DB_NAME": settings.DATABASES["default"]["NAME"]}
    proc = subprocess.Popen([sys.executable, "manage.py", "import_dataset", str(lamps(tmp_path / "v1.geojson", 300)),
                             "--spec", str(spec_path), "--commit", "--quiet"],
                            cwd=settings.BASE_DIR, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert "paused before commit" in proc.stderr.readline()
        # the run has copied, indexed and attached its generation and holds its transaction open
        with transaction.atomic(), connection.cursor() as cur:  # SET LOCAL: nothing left on a pooled session
            cur.execute("SET LOCAL statement_timeout = '3s'")
            cur.execute("SELECT count(*) FROM facilities_facility")  # would time out behind an exclusive lock
        assert not Facility.objects.filter(dataset__code="atomic-new-lights").exists()
    finally:
        proc.kill()
        proc.wait(timeout=30)
