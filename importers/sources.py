"""What an import may open: the file it was given, and nothing that file points at.

GDAL picks a driver from a file's content, not its name, and some drivers read other files or URLs (an OGR VRT
names any file or `/vsicurl/` URL; a MapInfo view names other tables; a GeoJSON `crs` link is fetched). So:

- `lock_down()` (run when this module is imported, in every process that imports) unregisters every GDAL
  driver but SAFE_DRIVERS from pyogrio's GDAL, refuses every HTTP fetch GDAL would make (a fetch callback) and
  every `/vsicurl/`-style network file, and switches PROJ's network off.
- `prepared(path, source_spec, name=...)` checks the path (no `/vsi...`, nothing GDAL or pyogrio would parse
  as a connection string, a URL or an archive member), unpacks `.zip` and `.kmz` files into a private folder
  with the inflated size and ratio of every member capped (no nested archives, no links, no member outside the
  folder), picks the reader and the one GDAL driver the extension allows, and yields a `SourceFile`.
- `check_driver()` refuses a file that GDAL opened with another driver than the one its name allows.
Every message names the file as its user named it (`SourceFile.name`), never a path on this server.
"""
import ctypes
import re
import shutil
import stat
import tempfile
import threading
import time
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pyogrio
import pyogrio._ogr
import pyogrio.util
import pyproj
from django.conf import settings

from .errors import ImportFailure

# The drivers an import may use, and which file extensions each opens. Each reads only the file it is given
# (a Shapefile also its own sidecars: .dbf, .shx, .prj, .cpg next to it).
# (LIBKML follows no NetworkLink and, with LIBKML_RESOLVE_STYLE off, fetches no style; it reads ExtendedData.)
# (OSM reads .osm.pbf extracts only, checked block by block first, with a configuration of importers.osm's: see there.)
SAFE_DRIVERS = ("GeoJSON", "ESRI Shapefile", "GPKG", "LIBKML", "OSM")
GDAL_EXTENSIONS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".shp": "ESRI Shapefile",
                   ".kml": "LIBKML", ".pbf": "OSM"}
ARCHIVE_EXTENSIONS = (".zip", ".kmz")
# Archives and compressed files that are not read (and never inside a .zip or .kmz either).
OTHER_ARCHIVE_EXTENSIONS = (".gz", ".tgz", ".tar", ".bz2", ".tbz2", ".xz", ".txz", ".7z", ".rar", ".zst", ".lz",
                            ".lzma", ".z", ".cab", ".arj", ".shz")
ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00",
                 b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07", b"\x28\xb5\x2f\xfd", b"\x1f\x9d")
# Below this size a member's compression ratio is not checked: it can not inflate into much.
RATIO_FLOOR_BYTES = 1024 * 1024
COPY_CHUNK = 1024 * 1024

# ---- GDAL, locked down -----------------------------------------------------------------------------------------

NETWORK_OFF = {
    # /vsicurl/, /vsicurl_streaming/, /vsis3/, ... open only this file name, which no URL has.
    "CPL_VSIL_CURL_ALLOWED_FILENAME": "/network-access-is-off-for-imports",
    "GDAL_HTTP_TIMEOUT": "1",
    "GDAL_HTTP_CONNECTTIMEOUT": "1",
    "GDAL_HTTP_MAX_RETRY": "0",
    "PROJ_NETWORK": "OFF",
    "ALLOW_OGR_SQL_FUNCTIONS_FROM_TRIGGER_AND_VIEW": "NO",
    "ALLOW_VIRTUAL_OGR_FROM_TRIGGER_AND_VIEW": "NO",
    "LIBKML_RESOLVE_STYLE": "NO",
    "LIBKML_EXTERNAL_STYLE": "NO",
}

# The state of this process's own GDAL library (which drivers it has, its network off): every process locks its own;
# nothing here is data that two app servers could disagree on.
_lock = threading.Lock()
_locked = False
_unsafe = set()  # every driver name ever unregistered
refused_urls = []  # the URLs GDAL tried to fetch and was refused (the last few; for tests and logs)


class _HTTPResult(ctypes.Structure):
    """The head of GDAL's CPLHTTPResult (cpl_http.h), as far as an error result needs it."""

    _fields_ = [("nStatus", ctypes.c_int), ("pszContentType", ctypes.c_void_p), ("pszErrBuf", ctypes.c_void_p),
                ("nDataLen", ctypes.c_int), ("nDataAlloc", ctypes.c_int), ("pabyData", ctypes.c_void_p),
                ("papszHeaders", ctypes.c_void_p), ("nMimePartCount", ctypes.c_int),
                ("pasMimePart", ctypes.c_void_p)]


_FETCH = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                          ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


def _gdal():
    """pyogrio's own libgdal (its wheel bundles one; GeoDjango loads Debian's, a separate library)."""
    lib = ctypes.CDLL(pyogrio._ogr.__file__)  # symbols resolve through the extension's own dependencies
    lib.CPLCalloc.restype, lib.CPLCalloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t, ctypes.c_size_t]
    lib.CPLStrdup.restype, lib.CPLStrdup.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    lib.CPLHTTPSetFetchCallback.restype, lib.CPLHTTPSetFetchCallback.argtypes = None, [_FETCH, ctypes.c_void_p]
    lib.GDALGetDriverByName.restype, lib.GDALGetDriverByName.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    lib.GDALDeregisterDriver.restype, lib.GDALDeregisterDriver.argtypes = None, [ctypes.c_void_p]
    return lib


def _refuse_fetch(url, *_args):
    """GDAL's HTTP fetch, replaced: every request fails without a byte on the network."""
    del refused_urls[:-20]
    refused_urls.append((url or b"").decode("utf-8", "replace"))
    lib = _LIB
    result = lib.CPLCalloc(1, ctypes.sizeof(_HTTPResult))
    head = _HTTPResult.from_address(result)
    head.nStatus = 1
    head.pszErrBuf = lib.CPLStrdup(b"network access is off for imports")
    return result


_LIB = None
_FETCH_CALLBACK = _FETCH(_refuse_fetch)  # kept referenced for the life of the process


def lock_down():
    """Leave pyogrio's GDAL with SAFE_DRIVERS only and no network. Idempotent; checked before every open."""
    global _LIB, _locked
    with _lock:
        if _locked and set(pyogrio.list_drivers()) <= set(SAFE_DRIVERS):
            return
        _LIB = _LIB or _gdal()
        _unsafe.update(d for d in pyogrio.list_drivers() if d not in SAFE_DRIVERS)
        # GDAL_SKIP also holds if anything registers the drivers again; it splits names on spaces, so the few
        # names with a space are unregistered by handle (and again by the next lock_down() if they come back).
        skip = ",".join(sorted(d for d in _unsafe if " " not in d))
        pyogrio.set_gdal_config_options({**NETWORK_OFF, "GDAL_SKIP": skip, "CPL_TMPDIR": gdal_tmpdir()})
        pyogrio._ogr._register_drivers()
        for name in sorted(_unsafe):
            handle = _LIB.GDALGetDriverByName(name.encode())
            if handle:
                _LIB.GDALDeregisterDriver(handle)
        left = sorted(set(pyogrio.list_drivers()) - set(SAFE_DRIVERS))
        if left:
            raise RuntimeError(f"GDAL drivers still registered after the lock-down: {', '.join(left)}")
        _LIB.CPLHTTPSetFetchCallback(_FETCH_CALLBACK, None)
        pyproj.network.set_network_enabled(False)
        _locked = True


def gdal_tmpdir():
    """Where GDAL's own temporary files go (the OSM driver's node index past OURCITY_IMPORT_OSM_MEMORY_MB): a
    folder of the imports' own, not the system's /tmp."""
    folder = Path(settings.IMPORTS_DIR) / "tmp" / "gdal"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return str(folder)


lock_down()


def check_driver(meta, source):
    """After an open: the driver GDAL used must be the one the file's name allows."""
    driver = meta.get("driver")
    if driver != source.driver:
        raise ImportFailure(f"{source.name}: GDAL reads it as {driver or 'an unknown format'}, not as "
                            f"{source.driver} (what its name says); refused")


# ---- the file given ---------------------------------------------------------------------------------------------

@dataclass
class SourceFile:
    path: Path  # the file to read on this machine (for an archive: the member unpacked from it)
    name: str  # the file as its user named it: the upload's name, or the path typed on the command line
    format: str  # gdal, datamos, csv or yaml
    driver: str | None = None  # format gdal: the one driver allowed to open it
    folder: Path | None = None  # a private folder this run unpacked into

    @property
    def gdal_path(self):
        return str(self.path)

    def scrub(self, text):
        """A GDAL or OS message with this server's paths replaced by the name the user knows."""
        # GDAL's hint to force a driver with a "DRIVER:" prefix: such names are refused here.
        text = re.sub(r"\.?;? *It might help to specify the correct driver.*$", "", str(text))
        for where in sorted({str(self.path), str(self.path.resolve()), str(self.folder or "")}, key=len,
                            reverse=True):
            if where:
                text = text.replace(where, self.name)
        return text


# Characters that GDAL or pyogrio read as syntax in a path: a driver prefix or URL scheme (':'), an archive
# member ('!'), URL parameters, a query or a fragment (';', '?', '#'), a Windows separator ('\').
_SYNTAX = re.compile(r"[:!;?#\\\x00-\x1f]")


def check_path(path, name):
    """The given path, resolved, if it is a local regular file (and no GDAL virtual path); else ImportFailure."""
    path = Path(path)
    if str(path).startswith("/vsi") or str(path.resolve()).startswith("/vsi"):
        raise ImportFailure(f"{name}: a GDAL virtual file system path (/vsi...) is refused: give a local file")
    if not path.exists():
        raise ImportFailure(f"{name}: no such file")
    if not path.is_file():
        raise ImportFailure(f"{name}: is not a regular file (a dataset is one file; zip a folder of files)")
    return path.resolve()


def plain_gdal_path(path, name):
    """The path GDAL is given: one that pyogrio passes on unchanged and that GDAL reads as a plain file."""
    text = str(path)
    if _SYNTAX.search(text):
        raise ImportFailure(f"{name}: the file's path holds ':', '!', ';', '?', '#' or '\\', which GDAL reads as a "
                            "connection string, URL or archive member: rename the file or its folder")
    if pyogrio.util.vsi_path(text) != text or text.startswith("/vsi"):
        raise ImportFailure(f"{name}: GDAL would not read this path as a plain file: rename the file")
    return path


# What GDAL's OSM driver claims a file by (its Identify looks for these in the first bytes): PBF's first block
# header names "OSMHeader"; OSM XML has an <osm element.
_OSM_CONTENT = re.compile(rb"OSMHeader|<osm")


def refuse_archive_content(path, name):
    """A file whose name is not an archive's but whose content is one (a zip named .kml, a gzip named .geojson)
    would be unpacked by a driver, past the caps: refused. So is an OSM extract under another name (the OSM driver
    reads only what importers.osm checked first)."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(ARCHIVE_MAGIC):
        raise ImportFailure(f"{name}: the file is an archive (zip, gzip, ...) under another name; refused "
                            "(name a zip .zip, a KMZ .kmz)")
    if path.suffix.lower() != ".pbf" and _OSM_CONTENT.search(head):
        raise ImportFailure(f"{name}: the file is an OpenStreetMap extract under another name; refused "
                            "(name an extract .osm.pbf)")


def detect_format(path, fmt, name):
    """The reader for a plain (not archived) file: the spec's source.format, or what the extension says."""
    suffix = path.suffix.lower()
    if suffix in OTHER_ARCHIVE_EXTENSIONS:
        raise ImportFailure(f"{name}: {suffix} archives are not read; only .zip and .kmz are (unpack it first)")
    if suffix == ".pbf":
        if fmt not in ("auto", "gdal", "osm"):
            raise ImportFailure(f"{name}: a .pbf file is an OpenStreetMap extract (source.format osm), not {fmt}")
        return "osm"
    if fmt == "osm":
        raise ImportFailure(f"{name}: source.format osm reads OpenStreetMap extracts named .osm.pbf")
    if fmt == "auto":
        if suffix == ".csv":
            return "csv"
        if suffix in (".yaml", ".yml"):
            return "yaml"
        if suffix == ".json":
            with open(path, "rb") as fh:
                head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
            # A GeoJSON file is an object; a data.mos.ru export is a top-level array of records.
            return "datamos" if head.startswith(b"[") else "gdal"
        return "gdal"
    return fmt


def gdal_driver(path, name):
    driver = GDAL_EXTENSIONS.get(path.suffix.lower())
    if driver is None:
        accepted = ", ".join(sorted(GDAL_EXTENSIONS) + list(ARCHIVE_EXTENSIONS))
        got = path.suffix or "a file without an extension"
        raise ImportFailure(f"{name}: GDAL reads only {accepted} files here, not {got} "
                            "(CSV with coordinates: source.format csv)")
    return driver


@contextmanager
def prepared(path, source_spec, *, name=None):
    """The file an import reads, checked, and unpacked if it is an archive; the unpacked copy goes at exit."""
    name = name or str(path)
    path = check_path(path, name)
    fmt = source_spec.get("format", "auto")
    suffix = path.suffix.lower()
    if suffix not in ARCHIVE_EXTENSIONS:
        refuse_archive_content(path, name)
        fmt = detect_format(path, fmt, name)
        if fmt in ("gdal", "osm"):
            yield SourceFile(path=plain_gdal_path(path, name), name=name, format=fmt, driver=gdal_driver(path, name))
        else:
            yield SourceFile(path=path, name=name, format=fmt)
        return
    folder = Path(tempfile.mkdtemp(prefix="unpacked-", dir=_work_root()))
    try:
        members = unpack(path, folder, name)
        yield _pick_member(folder, members, suffix, fmt, source_spec.get("member"), name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


STALE_SECONDS = 24 * 3600


def _work_root():
    """IMPORTS_DIR/tmp, where archives are unpacked; folders a killed run left there a day ago are removed."""
    root = Path(settings.IMPORTS_DIR) / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for folder in root.glob("unpacked-*"):
        try:
            if now - folder.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass
    return root


def limits():
    """(largest total inflated size in bytes, largest inflated/compressed ratio) for archives."""
    return int(settings.IMPORT_UNPACKED_MAX_BYTES), float(settings.IMPORT_UNPACK_MAX_RATIO)


def _member_problem(info):
    """Why a zip member is refused (a name that could leave the folder, a link, a nested archive), or None."""
    raw = info.filename
    if "\\" in raw or "\x00" in raw or ":" in raw:
        return "has '\\', ':' or a NUL in its name"
    pure = PurePosixPath(raw)
    if pure.is_absolute() or raw.startswith("/"):
        return "has an absolute name"
    if any(part == ".." for part in pure.parts):
        return "has '..' in its name"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    if info.flag_bits & 0x1:
        return "is encrypted"
    if not info.is_dir() and (pure.suffix.lower() in ARCHIVE_EXTENSIONS + OTHER_ARCHIVE_EXTENSIONS):
        return "is itself an archive (nested archives are not read)"
    return None


def unpack(path, folder, name):
    """Unpack every member of a zip (or kmz) into folder, refusing the whole file at the first bad member.

    The caps count what really comes out of the decompressor, not what the archive's headers claim."""
    max_bytes, max_ratio = limits()
    archive_size = max(path.stat().st_size, 1)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportFailure(f"{name}: not a readable zip archive ({exc})") from None
    members = []
    with zf:
        infos = zf.infolist()
        for info in infos:
            problem = _member_problem(info)
            if problem:
                raise ImportFailure(f"{name}: member {info.filename!r} {problem}; refused")
        # What the headers claim is checked first (an honest bomb is refused before a byte is inflated); the
        # copy below stops a member at the size its header claims, so a header that lies only breaks its CRC.
        claimed = sum(i.file_size for i in infos)
        if claimed > max_bytes:
            raise ImportFailure(f"{name}: unpacks to {_mb(claimed)}, more than the {_mb(max_bytes)} allowed; refused")
        for info in infos:
            if info.file_size > RATIO_FLOOR_BYTES and info.file_size / max(info.compress_size, 1) > max_ratio:
                raise ImportFailure(f"{name}: member {info.filename!r} inflates more than {max_ratio:g} times "
                                    "(a zip bomb?); refused")
        if claimed > RATIO_FLOOR_BYTES and claimed / archive_size > max_ratio:
            raise ImportFailure(f"{name}: inflates more than {max_ratio:g} times its size (a zip bomb?); refused")
        total = 0
        for info in infos:
            if info.is_dir():
                continue
            target = folder.joinpath(*PurePosixPath(info.filename).parts)
            if not target.resolve().is_relative_to(folder.resolve()):
                raise ImportFailure(f"{name}: member {info.filename!r} would leave the archive's folder; refused")
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            try:
                with zf.open(info) as src, open(target, "xb") as dst:
                    while chunk := src.read(COPY_CHUNK):
                        if not written and chunk.startswith(ARCHIVE_MAGIC):
                            raise ImportFailure(f"{name}: member {info.filename!r} is itself an archive "
                                                "(nested archives are not read); refused")
                        dst.write(chunk)
                        written += len(chunk)
                        total += len(chunk)
                        if total > max_bytes:
                            raise ImportFailure(f"{name}: unpacks to more than the {_mb(max_bytes)} allowed; refused")
                        if written > RATIO_FLOOR_BYTES and written / max(info.compress_size, 1) > max_ratio:
                            raise ImportFailure(f"{name}: member {info.filename!r} inflates more than {max_ratio:g} "
                                                "times (a zip bomb?); refused")
                        if total > RATIO_FLOOR_BYTES and total / archive_size > max_ratio:
                            raise ImportFailure(f"{name}: inflates more than {max_ratio:g} times its size "
                                                "(a zip bomb?); refused")
            except FileExistsError:
                raise ImportFailure(f"{name}: member {info.filename!r} is in the archive twice; refused") from None
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as exc:
                raise ImportFailure(f"{name}: member {info.filename!r} can not be unpacked "
                                    f"({str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__})") from None
            members.append(PurePosixPath(info.filename))
    return members


def _mb(n):
    return f"{n / 1024 / 1024:.0f} MB"


def _pick_member(folder, members, suffix, fmt, member, name):
    """The dataset inside an unpacked archive: the member the spec names, or the one there is."""
    def found(m, fmt_):
        path = folder.joinpath(*m.parts)
        shown = f"{name}/{m}" if len(members) > 1 else name
        if fmt_ != "gdal":
            return SourceFile(path=path, name=shown, format=fmt_, folder=folder)
        return SourceFile(path=plain_gdal_path(path, shown), name=shown, format=fmt_, driver=gdal_driver(path, shown),
                          folder=folder)

    if member:
        chosen = [m for m in members if str(m) == member]
        if not chosen:
            raise ImportFailure(f"{name}: no member {member!r} inside the archive")
        m = chosen[0]
        if fmt == "auto":
            fmt = detect_format(folder.joinpath(*m.parts), "auto", name)
        return found(m, fmt)
    if suffix == ".kmz":
        kml = [m for m in members if m.suffix.lower() == ".kml"]
        if not kml:
            raise ImportFailure(f"{name}: no .kml document inside the kmz")
        doc = [m for m in kml if m.name.lower() == "doc.kml"] or kml
        return found(doc[0], "gdal")
    jsons = [m for m in members if m.suffix.lower() == ".json"]
    others = [m for m in members if m.suffix.lower() in (".shp", ".geojson", ".gpkg", ".kml")]
    if fmt == "datamos" or (fmt == "auto" and jsons and not others):
        if not jsons:
            raise ImportFailure(f"{name}: no JSON file inside the zip")
        return found(jsons[0], "datamos")
    candidates = others + jsons
    if not candidates:
        raise ImportFailure(f"{name}: no dataset inside the zip (looked for .shp, .geojson, .json, .gpkg, .kml)")
    if len(candidates) > 1:
        listed = ", ".join(str(m) for m in candidates[:5])
        raise ImportFailure(f"{name}: the zip holds several datasets ({listed}): name one in source.member")
    return found(candidates[0], "gdal" if fmt in ("auto", "gdal") else fmt)


def environment():
    """The GDAL settings an import runs with (for the docs and the tests)."""
    return {"drivers": sorted(pyogrio.list_drivers()), **{k: pyogrio.get_gdal_config_option(k) for k in NETWORK_OFF}}

