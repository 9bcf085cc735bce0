"""The apps import one way (DESIGN.md): import-linter checks the contracts in .importlinter.

The suite fails when an import runs the wrong way between apps; the planted cases show that each contract can fail:
a copy of the project's packages with one wrong-way import added is linted and must be refused.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).parent / "lint-imports"
PACKAGES = ["geo_ourcity", "facilities", "routing", "complaints", "importers", "open311", "web", "staff"]


def lint(root):
    return subprocess.run([str(LINT), "--config", str(root / ".importlinter"), "--no-cache"], cwd=root,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root), "COLUMNS": "400"}, capture_output=True, text=True,
                          timeout=120)


def test_the_apps_import_one_way():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory):
    """The project's Python packages (source only) and the contracts, copied once for the planted cases."""
    root = tmp_path_factory.mktemp("contracts")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns(
            "__pycache__", "static", "templates", "locale", "*.mo", "*.po", "*.js", "*.css"))
    shutil.copy(ROOT / ".importlinter", root / ".importlinter")
    return root


# (module that gets the import, the import, the contract that must break)
PLANTED = [
    ("routing/services.py", "from complaints.models import OPEN_STATES", "routing imports nothing from complaints"),
    ("routing/engine.py", "import importers.core", "routing imports nothing from complaints"),
    ("facilities/selectors.py", "from routing.models import Category", "facilities imports no other app"),
    ("facilities/models.py", "from importers import models as _m", "facilities imports no other app"),
    ("geo_ourcity/demo.py", "from staff.demo import DEMO_STAFF", "the project package imports no app's internals"),
    ("importers/core.py", "from routing.engine import route", "importers write facilities"),
    ("importers/load.py", "from complaints.models import Complaint", "importers write facilities"),
    ("complaints/services.py", "from web.labels import state_label", "open311, web, staff -> complaints"),
]


@pytest.mark.parametrize("module, line, contract", PLANTED, ids=[f"{m}:{line.split()[1]}" for m, line, _ in PLANTED])
def test_a_wrong_way_import_breaks_a_contract(project_copy, module, line, contract):
    path = project_copy / module
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text(original + f"\n\ndef _planted():\n    {line}\n", encoding="utf-8")
        result = lint(project_copy)
    finally:
        path.write_text(original, encoding="utf-8")
    assert result.returncode != 0, result.stdout
    broken = [ln for ln in result.stdout.splitlines() if "BROKEN" in ln]
    assert any(contract in ln for ln in broken), result.stdout
