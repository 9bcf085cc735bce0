"""The data-staff upload: keep the uploaded file, dry-run it, commit the very run that was previewed.

Services: `upload_dry_run`, `upload_commit`. Selectors: `spec_names`, `stored_upload_name`, `stored_upload_path`,
`run_file`, `run_rejects_head`, `run_counts`. The pipeline is importers.core.run_import, as for `manage.py
import_dataset`. Uploads are kept in the "imports" storage (importers.storage: OURCITY_IMPORTS_DIR, or a bucket
every app server and worker shares) as uploads/<sha256>/<safe file name>, so a run's file is found by its hash and
name; the readers get a local copy of it (GDAL needs a path), checked by importers.sources as any local file is.
"""
import contextlib
import csv
import hashlib
import io
import itertools
import os
import re
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import storage
from .core import file_sha256, run_import
from .errors import ImportFailure
from .models import ImportRun

DATASET_EXTENSIONS = (".geojson", ".json", ".gpkg", ".zip", ".kml", ".kmz", ".csv", ".yaml", ".yml", ".pbf")
SPEC_EXTENSIONS = (".yaml", ".yml", ".json")
SPEC_MAX_BYTES = 1024 * 1024
REJECTS_SHOWN = 100
UPLOADS = "uploads"  # the folder of uploads in the imports storage

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
    """Where uploads are kept on this machine's disk, when the imports storage is the filesystem."""
    return Path(settings.IMPORTS_DIR) / "uploads"


def spec_names():
    """The mapping specs kept in the repository (data/specs), by file name."""
    return sorted(p.name for p in specs_dir().iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))


def safe_filename(name):
    """The last part of a client's file name, keeping letters, digits, '.', '-' and '_' (the rest become '_')."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^\w.-]", "_", base).lstrip(".")[-200:]
    return base or "upload"


def upload_name(sha256, file_name):
    """The name in the imports storage of an upload with this hash and client file name."""
    return f"{UPLOADS}/{sha256}/{safe_filename(file_name)}"


@contextlib.contextmanager
def kept_upload(uploaded):
    """Keep an uploaded file in the imports storage as uploads/<sha256>/<safe name>; while the block runs, yield
    (its name there, a local path of it for the readers).

    The bytes go to a local file first (the hash is known only at the end); on the filesystem that file is moved
    into place, elsewhere (S3) it is sent to the store and is the run's local copy until the block ends.
    """
    scratch = storage.scratch_dir()
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=scratch, prefix=".incoming-", delete=False) as tmp:
        try:
            for chunk in uploaded.chunks():
                digest.update(chunk)
                tmp.write(chunk)
        except BaseException:
            os.unlink(tmp.name)
            raise
    name = upload_name(digest.hexdigest(), uploaded.name)
    local = storage.local_path(name)
    if local is not None:  # the filesystem: the upload is kept where the next request (or a worker) finds it
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(tmp.name, local)  # a rename, unless tmp/ is another filesystem
        yield name, local
        return
    folder = Path(tempfile.mkdtemp(prefix="upload-", dir=scratch))
    copy = folder / safe_filename(uploaded.name)  # the client's extension, as the readers expect it
    os.replace(tmp.name, copy)
    try:
        storage.keep_local_file(copy, name)
        yield name, copy
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def store_upload(uploaded):
    """Keep an uploaded file in the imports storage as uploads/<sha256>/<safe name>; return its name there."""
    with kept_upload(uploaded) as (name, _path):
        return name


def upload_dry_run(*, file, user, spec_name="", spec_file=None):
    """Store the upload (and an uploaded spec) and dry-run it. Raises ImportFailure; changes nothing."""
    with contextlib.ExitStack() as stack:
        if spec_file is not None:
            spec, shown = stack.enter_context(kept_upload(spec_file))[1], spec_file.name
        elif spec_name in spec_names():
            spec, shown = specs_dir() / spec_name, spec_name
        else:
            raise ImportFailure(_("choose a mapping spec or upload one"))
        _name, path = stack.enter_context(kept_upload(file))
        result = run_import(path, spec, commit=False, user=user, original_name=file.name, spec_name=shown)
    keep_run_files(result.run)
    return result


def upload_commit(*, run, user, progress=None):
    """Commit a dry run: the same stored file (its hash checked again) with the same spec. In the foreground; the
    upload page queues it instead (upload_commit_queue)."""
    if run.status != ImportRun.Status.DRY_RUN:
        raise ImportFailure(_("run #%(id)s is not a dry run: only a dry run can be committed") % {"id": run.pk})
    name = stored_upload_name(run)
    if name is None:
        raise ImportFailure(_("the file of run #%(id)s is no longer stored: upload it again") % {"id": run.pk})
    with storage.local_copy(name) as path:
        if file_sha256(path) != run.file_sha256:
            raise ImportFailure(_("the stored file of run #%(id)s has changed since the dry run: upload it again")
                                % {"id": run.pk})
        result = run_import(path, run.spec, commit=True, user=user, original_name=run.file_name,
                            progress=progress)
    keep_run_files(result.run)
    return result


def keep_run_files(run):
    """A run's report and rejects (written by the pipeline on this machine, under IMPORTS_DIR) into the imports
    storage as <database name>/run-<id>/..., where every app server finds them; on the filesystem they are there already. The
    local copies of a remote store's files are removed: the store is the one place they are read from."""
    for kind in ("report", "rejects"):
        local = getattr(run, f"{kind}_path")
        name = _run_file_name(local) if local else None
        if name is None or not Path(local).is_file():
            continue
        if storage.local_path(name) is None:
            storage.keep_local_file(local, name)
            os.unlink(local)


def stored_upload_name(run):
    """The name in the imports storage of the upload a run was made from, or None (e.g. runs of `manage.py
    import_dataset`, or an upload no longer stored). Open it with importers.storage.local_copy(name)."""
    if not re.fullmatch(r"[0-9a-f]{64}", run.file_sha256):
        return None
    name = upload_name(run.file_sha256, run.file_name)
    return name if storage.imports_storage().exists(name) else None


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
    """The local path of a run's stored upload when the imports storage is this machine's disk, else None (use
    stored_upload_name and importers.storage.local_copy, which work with every storage)."""
    name = stored_upload_name(run)
    return storage.local_path(name) if name else None


def can_commit(run):
    return run.status == ImportRun.Status.DRY_RUN and stored_upload_name(run) is not None


# <database name>/run-<id>/report.txt or rejects.csv (importers.core.runs_dir; older runs have no database folder)
_RUN_FILE = re.compile(r"(?:(?!\.+/)[A-Za-z0-9_.-]+/)?run-[0-9]+/(report\.txt|rejects\.csv)")


def _run_file_name(stored):
    """A run's stored report or rejects path as a name in the imports storage, or None if it is not one: an
    absolute path must lie inside IMPORTS_DIR (the pipeline records those), and only run-<id>/report.txt and
    run-<id>/rejects.csv (in their database's folder) are run files."""
    path = Path(stored)
    if path.is_absolute():
        path = path.resolve()
        root = Path(settings.IMPORTS_DIR).resolve()
        if not path.is_relative_to(root):
            return None
        path = path.relative_to(root)
    name = path.as_posix()
    return name if _RUN_FILE.fullmatch(name) else None


def run_file(run, kind):
    """A run's "report" (text) or "rejects" (CSV) file as a name in the imports storage, or None; never a file
    that is not a run's report or rejects (e.g. outside IMPORTS_DIR). Open it with open_run_file."""
    stored = {"report": run.report_path, "rejects": run.rejects_path}.get(kind)
    name = _run_file_name(stored) if stored else None
    if name is None:
        return None
    local = storage.local_path(name)
    if local is not None:  # the filesystem: a regular file, no link out of IMPORTS_DIR
        real = local.resolve()
        inside = real.is_relative_to(Path(settings.IMPORTS_DIR).resolve())
        return name if inside and real.is_file() else None
    return name if storage.imports_storage().exists(name) else None


def open_run_file(name):
    """A run file (a name from run_file) opened for reading bytes, from whichever storage holds it."""
    return storage.imports_storage().open(name, "rb")


def run_report_text(run):
    name = run_file(run, "report")
    if name is None:
        return ""
    with open_run_file(name) as fh:
        return fh.read().decode("utf-8")


def run_rejects_head(run, limit=REJECTS_SHOWN):
    """The first rejected rows of a run: (row, key, reason) lists."""
    name = run_file(run, "rejects")
    if name is None:
        return []
    with open_run_file(name) as fh:
        lines = itertools.islice(io.TextIOWrapper(_readable(fh), encoding="utf-8", newline=""), limit + 1)
        reader = csv.reader(lines)
        next(reader, None)  # the header
        return list(itertools.islice(reader, limit))


def _readable(stored):
    """The binary file object under a storage's File (a local file, or the S3 object's spooled copy)."""
    return getattr(stored, "file", stored)


def run_counts(run):
    """(label, value) pairs of a run's counts, in reading order."""
    return [(label, run.counts[key]) for key, label in COUNT_LABELS if key in run.counts]
