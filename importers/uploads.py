"""The data-staff upload: keep the uploaded file, dry-run it, commit the very run that was previewed.

Services: `upload_dry_run`, `upload_commit`. Selectors: `spec_names`, `stored_upload_path`, `run_file`,
`run_rejects_head`, `run_counts`. The pipeline is importers.core.run_import, as for `manage.py import_dataset`.
Uploads are kept as IMPORTS_DIR/uploads/<sha256>/<safe file name>, so a run's file is found by its hash and name.
"""
import csv
import hashlib
import itertools
import os
import re
import tempfile
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .core import file_sha256, run_import
from .errors import ImportFailure
from .models import ImportRun

DATASET_EXTENSIONS = (".geojson", ".json", ".gpkg", ".zip", ".kml", ".kmz", ".csv", ".yaml", ".yml")
SPEC_EXTENSIONS = (".yaml", ".yml", ".json")
SPEC_MAX_BYTES = 1024 * 1024
REJECTS_SHOWN = 100

COUNT_LABELS = [
    ("read", gettext_lazy("read")),
    ("created", gettext_lazy("created")),
    ("updated", gettext_lazy("updated")),
    ("unchanged", gettext_lazy("unchanged")),
    ("retired", gettext_lazy("retired")),
    ("rejected", gettext_lazy("rejected")),
    ("repaired", gettext_lazy("repaired (invalid geometries fixed)")),
    ("reprojected_from", gettext_lazy("reprojected from")),
    ("seconds", gettext_lazy("seconds")),
]


def specs_dir():
    return Path(settings.BASE_DIR) / "data" / "specs"


def uploads_dir():
    return Path(settings.IMPORTS_DIR) / "uploads"


def spec_names():
    """The mapping specs kept in the repository (data/specs), by file name."""
    return sorted(p.name for p in specs_dir().iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))


def safe_filename(name):
    """The last part of a client's file name, keeping letters, digits, '.', '-' and '_' (the rest become '_')."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^\w.-]", "_", base).lstrip(".")[-200:]
    return base or "upload"


def store_upload(uploaded):
    """Keep an uploaded file as uploads/<sha256>/<safe name>; return its path."""
    root = uploads_dir()
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=root, prefix=".incoming-", delete=False) as tmp:
        try:
            for chunk in uploaded.chunks():
                digest.update(chunk)
                tmp.write(chunk)
        except BaseException:
            os.unlink(tmp.name)
            raise
    folder = root / digest.hexdigest()
    folder.mkdir(exist_ok=True)
    path = folder / safe_filename(uploaded.name)
    os.replace(tmp.name, path)
    return path


def upload_dry_run(*, file, user, spec_name="", spec_file=None):
    """Store the upload (and an uploaded spec) and dry-run it. Raises ImportFailure; changes nothing."""
    if spec_file is not None:
        spec, shown = store_upload(spec_file), spec_file.name
    elif spec_name in spec_names():
        spec, shown = specs_dir() / spec_name, spec_name
    else:
        raise ImportFailure(_("choose a mapping spec or upload one"))
    return run_import(store_upload(file), spec, commit=False, user=user, original_name=file.name, spec_name=shown)


def upload_commit(*, run, user, progress=None):
    """Commit a dry run: the same stored file (its hash checked again) with the same spec. In the foreground; the
    upload page queues it instead (upload_commit_queue)."""
    if run.status != ImportRun.Status.DRY_RUN:
        raise ImportFailure(_("run #%(id)s is not a dry run: only a dry run can be committed") % {"id": run.pk})
    path = stored_upload_path(run)
    if path is None:
        raise ImportFailure(_("the file of run #%(id)s is no longer stored: upload it again") % {"id": run.pk})
    if file_sha256(path) != run.file_sha256:
        raise ImportFailure(_("the stored file of run #%(id)s has changed since the dry run: upload it again")
                            % {"id": run.pk})
    return run_import(path, run.spec, commit=True, user=user, original_name=run.file_name, progress=progress)


def may_commit(user, run):
    """Who may commit a dry run: the one who made it, or a superuser (another data clerk's upload is theirs)."""
    return bool(user.is_superuser or (run.user_id is not None and run.user_id == user.pk))


def upload_commit_queue(*, run, user):
    """The upload page's commit: checked now (a clear message, nothing queued), run by a worker
    (importers.tasks.import_commit) once this commits. One commit per dry run: asking again returns the same one.
    Raises ImportFailure."""
    from django.db import transaction

    from .models import ImportCommit
    from .tasks import import_commit

    if not may_commit(user, run):
        raise PermissionError
    with transaction.atomic():
        run = ImportRun.objects.select_for_update().get(pk=run.pk)
        job = ImportCommit.objects.filter(dry_run=run).first()
        if job is not None:
            return job
        if not can_commit(run):
            upload_check(run)
        job = ImportCommit.objects.create(dry_run=run, user=user)
        transaction.on_commit(lambda: import_commit.delay(job.pk), robust=True)
    return job


def upload_check(run):
    """Raise ImportFailure with the reason a run can't be committed (see upload_commit)."""
    if run.status != ImportRun.Status.DRY_RUN:
        raise ImportFailure(_("run #%(id)s is not a dry run: only a dry run can be committed") % {"id": run.pk})
    raise ImportFailure(_("the file of run #%(id)s is no longer stored: upload it again") % {"id": run.pk})


def stored_upload_path(run):
    """The stored upload a run was made from, or None (e.g. runs of `manage.py import_dataset`)."""
    if not re.fullmatch(r"[0-9a-f]{64}", run.file_sha256):
        return None
    path = uploads_dir() / run.file_sha256 / safe_filename(run.file_name)
    return path if path.is_file() else None


def can_commit(run):
    return run.status == ImportRun.Status.DRY_RUN and stored_upload_path(run) is not None


def run_file(run, kind):
    """A run's "report" (text) or "rejects" (CSV) file, or None; never a path outside IMPORTS_DIR."""
    name = {"report": run.report_path, "rejects": run.rejects_path}.get(kind)
    if not name:
        return None
    path = Path(name).resolve()
    if not path.is_relative_to(Path(settings.IMPORTS_DIR).resolve()) or not path.is_file():
        return None
    return path


def run_report_text(run):
    path = run_file(run, "report")
    return path.read_text(encoding="utf-8") if path else ""


def run_rejects_head(run, limit=REJECTS_SHOWN):
    """The first rejected rows of a run: (row, key, reason) lists."""
    path = run_file(run, "rejects")
    if path is None:
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader, None)  # the header
        return list(itertools.islice(reader, limit))


def run_counts(run):
    """(label, value) pairs of a run's counts, in reading order."""
    return [(label, run.counts[key]) for key, label in COUNT_LABELS if key in run.counts]
