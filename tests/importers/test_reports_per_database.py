"""Import reports and rejects are kept per database (issue 12): IMPORTS_DIR/<database name>/run-N/. Run numbers are
each database's own, so the demo database and a test run, or two cities, sharing one IMPORTS_DIR would otherwise
overwrite each other's run-N files."""
from pathlib import Path

import pytest
from django.db import connection

from importers.core import run_import, runs_dir
from importers.models import ImportRun

pytestmark = pytest.mark.django_db
SPEC = {"dataset": "t-report-days", "target": "holidays", "key": "date", "date": "date", "name": "name"}


@pytest.fixture
def imports_dir(settings, tmp_path):
    settings.IMPORTS_DIR = str(tmp_path / "imports")
    return Path(settings.IMPORTS_DIR)


@pytest.mark.parametrize("commit", [False, True])
def test_a_run_writes_under_its_own_database_and_leaves_another_databases_run_alone(imports_dir, tmp_path, commit):
    upcoming = (ImportRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    others = {}
    for other in ("geo_ourcity", "another_city"):  # the same run numbers in other databases
        for n in range(upcoming, upcoming + 3):
            folder = imports_dir / other / f"run-{n}"
            folder.mkdir(parents=True)
            for name in ("report.txt", "rejects.csv"):
                (folder / name).write_text(f"{other} run {n}", encoding="utf-8")
                others[folder / name] = f"{other} run {n}"
    path = tmp_path / "days.csv"
    path.write_text("date,name\n2031-01-01,New Year\n2031-13-01,bad\n", encoding="utf-8")
    result = run_import(path, SPEC, commit=commit)
    mine = imports_dir / connection.settings_dict["NAME"] / f"run-{result.run.pk}"
    assert Path(result.run.report_path) == mine / "report.txt"
    assert "2031-13-01" in (mine / "rejects.csv").read_text(encoding="utf-8")
    assert f"Report: {connection.settings_dict['NAME']}/run-{result.run.pk}/report.txt" in result.report_text
    assert {p: p.read_text(encoding="utf-8") for p in others} == others


@pytest.mark.parametrize("name", ["../../etc", "a/b", "..", ".", "/abs", "x\x00y", "test db", "ünïcode"])
def test_the_folder_of_any_database_name_stays_inside_imports_dir(imports_dir, name):
    folder = runs_dir(name)
    assert folder.parent == imports_dir and folder.name not in ("", ".", "..") and "/" not in folder.name
