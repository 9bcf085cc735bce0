"""Where the import pipeline's files live: the "imports" storage of settings.STORAGES (geo_ourcity.env).

Names in it: uploads/<sha256>/<safe file name> (an uploaded dataset or spec, found again by its hash and name),
<database name>/run-<id>/report.txt and .../rejects.csv (a run's report; importers.core.runs_dir). On the
filesystem that is OURCITY_IMPORTS_DIR itself, so a file is read in place; in an S3-compatible bucket every app
server and worker sees the same files, and GDAL, which needs a local path, reads a copy made under
OURCITY_IMPORTS_DIR/tmp for the run (`local_copy`).
"""
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages

COPY_CHUNK = 1024 * 1024


class ImportsFileSystemStorage(FileSystemStorage):
    """A FileSystemStorage at settings.IMPORTS_DIR, read when used (as the default storage reads MEDIA_ROOT)."""

    @property
    def base_location(self):
        return self._value_or_setting(self._location, settings.IMPORTS_DIR)

    @property
    def location(self):
        return os.path.abspath(self.base_location)


def imports_storage():
    return storages["imports"]


def local_path(name):
    """The file's own path when the storage is this machine's disk, else None."""
    try:
        return Path(imports_storage().path(name))
    except NotImplementedError:  # a remote store has no local paths
        return None


def scratch_dir():
    """OURCITY_IMPORTS_DIR/tmp: local scratch space of this machine (importers.sources cleans it)."""
    root = Path(settings.IMPORTS_DIR) / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def local_copy(name):
    """A local path of the stored file `name` while the block runs: the file itself on the filesystem, else a copy
    (same file name, so that the readers see the same extension) in a folder of its own, removed afterwards."""
    path = local_path(name)
    if path is not None:
        yield path
        return
    folder = Path(tempfile.mkdtemp(prefix="stored-", dir=scratch_dir()))
    try:
        copy = folder / Path(name).name
        with imports_storage().open(name, "rb") as src, open(copy, "wb") as dst:
            shutil.copyfileobj(src, dst, COPY_CHUNK)
        yield copy
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def keep_local_file(path, name):
    """Store the local file `path` as `name` (replacing what was there), unless `path` is that file already."""
    own = local_path(name)
    if own is not None and own.resolve() == Path(path).resolve():
        return name
    storage = imports_storage()
    if storage.exists(name):
        storage.delete(name)
    with open(path, "rb") as fh:
        return storage.save(name, fh)
