"""The import pipeline, shared by `manage.py import_dataset` and the data-staff upload page.

    run_import(path, spec, commit=False) -> ImportResult

read (pyogrio / data.mos.ru JSON / CSV) -> validate in bulk (prepare.py) -> COPY into a staging table and
set-based SQL (load.py) -> report. Everything that touches the registry runs in one transaction: a dry run
rolls it back; a commit that fails, or a process that is killed, leaves the registry exactly as it was.
Every run is recorded as an ImportRun (who, when, file hash, spec, counts, status). After a commit that changed
what routing reads (the registry or the catalogue), the open complaints whose answer changed are re-routed.
"""
import csv
import getpass
import hashlib
import logging
import os
import re
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import shapely
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from facilities.models import AdminArea, Authority, Dataset, Department, FacilityType

from . import load, prepare, sources, working_weeks
from .errors import ImportFailure, public_text
from .facility_job import FacilityJob
from .models import ImportRun
from .readers import read_source
from .spec import load_spec

log = logging.getLogger(__name__)

# Test hook: seconds to wait after all work is done, just before COMMIT (used by the kill test).
PAUSE_ENV = "OURCITY_IMPORT_PAUSE_BEFORE_COMMIT"
# Targets whose changes can change where an open complaint belongs (holidays and working weeks only move deadlines).
REROUTE_TARGETS = ("areas", "authorities", "facilities", "categories", "assignments")


class Progress:
    """Progress callbacks: `step(name)` names the stage, `advance(n)` counts rows. The base class is silent."""

    def start(self, total):
        pass

    def step(self, name):
        pass

    def advance(self, n):
        pass

    def close(self):
        pass


@dataclass
class ImportResult:
    run: ImportRun
    counts: dict
    rejects: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    report_text: str = ""
    reroute: object = None  # routing.services.RerouteResult of the re-route after the commit, if one ran


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mark_abandoned_runs():
    """Runs left 'running' by a process that died (its database session is gone) are marked aborted."""
    with connection.cursor() as cur:
        # SKIP LOCKED: a live import holds its own run row locked until it commits; never wait for it.
        cur.execute("""UPDATE importers_importrun SET status = 'aborted', finished_at = now(),
                              error = 'the importing process ended before it finished; nothing was changed'
                       WHERE id IN (SELECT r.id FROM importers_importrun r WHERE r.status = 'running'
                                    AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.backend_pid)
                                    FOR UPDATE SKIP LOCKED)""")


def run_import(path, spec, *, commit=False, user=None, actor=None, progress=None, original_name=None, reroute=True,
               spec_name=None):
    """Import `path` as `spec` says. `original_name` and `spec_name` are the names the user knows the file and
    the spec by (an upload's names; default: the paths as given): every message names them, never a path of
    this server."""
    progress = progress or Progress()
    name = original_name or str(path)
    path = Path(path)
    actor = actor or (user.get_username() if user else None) or _os_user()
    names = {str(path): name, str(path.resolve()): name}
    if not isinstance(spec, dict):
        spec_name = spec_name or str(spec)
        names.update({str(spec): spec_name, str(Path(spec).resolve()): spec_name})
    try:
        spec_obj = load_spec(spec, name=spec_name)
    except ImportFailure as exc:
        message = public_text(exc, names)
        _record_failure(path, {"spec": spec_name or "?"}, "?", actor, user, commit, message, name)
        raise ImportFailure(message) from None
    sources.check_path(path, name)  # a local regular file (no /vsi... path): before anything is recorded
    mark_abandoned_runs()
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    # The file's hash is computed beside the import (hashlib releases the GIL), not before it.
    hasher = ThreadPoolExecutor(max_workers=1)
    sha256 = hasher.submit(file_sha256, path)
    hasher.shutdown(wait=False)
    run = ImportRun.objects.create(
        dataset=Dataset.objects.filter(code=spec_obj.dataset).first(), dataset_code=spec_obj.dataset, user=user,
        actor=actor, file_name=original_name or path.name, file_sha256="", spec=spec_obj.raw,
        commit=commit, backend_pid=pid)
    run.sha256_future = sha256
    started = time.monotonic()
    try:
        # The file checked (and an archive unpacked within its caps) before any reader sees it.
        with sources.prepared(path, spec_obj.source, name=name) as source:
            result = _run(run, source, spec_obj, commit, progress, reroute)
    except ImportFailure as exc:
        message = public_text(exc, names)
        _finish_failed(run, message)
        raise ImportFailure(message) from None
    except Exception as exc:  # a bug or a database error: the run is recorded with its traceback
        log.exception("import run %s failed", run.pk)
        first = public_text((str(exc).strip().splitlines() or [""])[0], names)
        _finish_failed(run, f"{exc.__class__.__name__}: {first}", detail=traceback.format_exc())
        raise ImportFailure(f"import failed: {exc.__class__.__name__}: {first} (run #{run.pk}; nothing was changed)"
                            ) from exc
    finally:
        progress.close()
    result.counts["seconds"] = round(time.monotonic() - started, 2)
    _write_report(result, spec_obj)
    ImportRun.objects.filter(pk=run.pk).update(counts=result.counts, report_path=run.report_path,
                                               rejects_path=run.rejects_path)
    return result


def _os_user():
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _record_failure(path, spec_raw, dataset_code, actor, user, commit, error, original_name):
    ImportRun.objects.create(dataset_code=dataset_code, user=user, actor=actor, file_name=original_name or str(path),
                             file_sha256=file_sha256(path) if path.is_file() else "", spec=spec_raw, commit=commit,
                             status=ImportRun.Status.FAILED, error=error, finished_at=timezone.now())


def _sha256(run):
    """The file hash computed beside the run (see run_import)."""
    if not run.file_sha256:
        run.file_sha256 = run.sha256_future.result()
    return run.file_sha256


def _finish_failed(run, error, detail=""):
    # The data transaction is gone by now (rolled back); this write is on its own.
    ImportRun.objects.filter(pk=run.pk).update(status=ImportRun.Status.FAILED, finished_at=timezone.now(),
                                               file_sha256=_sha256(run),
                                               error=(error + ("\n\n" + detail if detail else "")))
    run.status, run.error = ImportRun.Status.FAILED, error


class _RowJob:
    """Areas, authorities and the catalogue: read whole, validated in bulk (prepare.py), staged and upserted."""

    def __init__(self, path, spec, progress):
        self.spec, self.progress = spec, progress
        self.changed_ids = None  # areas or categories: the ids the commit changed or retired (for the re-route)
        progress.step("reading")
        source = read_source(path, spec.source)
        prepare.check_fields(spec, source)
        prepare.add_derived(spec, source)
        progress.step("validating")
        self.prepared, self.extra = _prepare(spec, source)
        self.notes = self.prepared.notes
        progress.start(len(self.prepared.rows))

    def load(self, cur, dataset, commit, run):
        load.stage_rejected_keys(cur, [key for _, key, _ in self.prepared.rejects])
        counts, sql_rejects, self.changed_ids = _load(cur, self.spec, dataset, self.prepared, self.extra, commit,
                                                      run, self.progress)
        return {**self.prepared.counts, **counts}, sorted(self.prepared.rejects + sql_rejects)


def _facility_job(path, spec, progress):
    declared = spec.options.get("types", {})
    type_codes = set(FacilityType.objects.values_list("code", flat=True)) | set(declared)
    tv = spec.values["type"]
    referenced = {c for c in [tv.constant, tv.default, *(tv.value_map or {}).values()] if c}
    missing = sorted(referenced - type_codes)
    if missing:
        raise ImportFailure(f"spec: facility type {missing[0]!r} does not exist: declare it under 'types' "
                            "or create it in the admin")
    return FacilityJob(path, spec, progress, city=city_geometry() if spec.require_in_city else None,
                       owners=_authority_lookups(), create_types=lambda: _create_declared_types(declared))


def _run(run, path, spec, commit, progress, reroute=True):
    job = _facility_job(path, spec, progress) if spec.target == "facilities" else _RowJob(path, spec, progress)
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_xact_lock(hashtext('geo_ourcity.import:' || %s))", [spec.dataset])
            if not cur.fetchone()[0]:
                raise ImportFailure(f"another import of dataset {spec.dataset} is running; try again when it ends")
            dataset = _dataset(spec)
            run.dataset = dataset
            progress.step("staging")
            counts, rejects = job.load(cur, dataset, commit, run)
        counts = {**counts, "rejected": len(rejects)}
        changed = counts["created"] + counts["updated"] + counts["retired"]
        if commit:
            status = ImportRun.Status.COMMITTED if changed else ImportRun.Status.NO_CHANGE
            ImportRun.objects.filter(pk=run.pk).update(status=status, finished_at=timezone.now(), counts=counts,
                                                       dataset=dataset, file_sha256=_sha256(run))
            run.status = status
            pause = os.environ.get(PAUSE_ENV)
            if pause:
                print(f"import: paused before commit (run #{run.pk})", file=sys.stderr, flush=True)
                time.sleep(float(pause))
        else:
            transaction.set_rollback(True)
    if commit and not connection.in_atomic_block:
        load.drop_retired_generations(connection)
    rerouted = None
    if commit and reroute and changed and spec.target in REROUTE_TARGETS:
        progress.step("re-routing open complaints")
        rerouted = _reroute(run, spec.target, counts, job.notes, job.changed_ids)
    if not commit:
        run.status = ImportRun.Status.DRY_RUN
        ImportRun.objects.filter(pk=run.pk).update(status=run.status, finished_at=timezone.now(), counts=counts,
                                                   dataset=Dataset.objects.filter(code=spec.dataset).first(),
                                                   file_sha256=_sha256(run))
    return ImportResult(run=run, counts=counts, rejects=rejects, notes=job.notes, reroute=rerouted)


def _reroute(run, target, counts, notes, changed_ids=None):
    """Re-route the open complaints this commit moved. The import stands even if this fails: say so.

    Authorities and the routing table move no geometry: the facilities and areas each complaint's decision found
    still stand, and only who answers for them is decided again. Facilities, areas and categories: the import
    says which it changed, and only the complaints those can concern search again (None: it could not say, e.g.
    a first import of a million facilities; then every complaint does)."""
    try:
        from routing.services import complaints_reroute

        reason = f"import run #{run.pk} ({run.dataset_code})"
        if target in ("authorities", "assignments"):
            result = complaints_reroute(reason=reason, spatial=False)
        else:
            # the keyword is the target's name: facilities=, areas=, categories=
            result = complaints_reroute(reason=reason, **({target: changed_ids} if changed_ids is not None else {}))
        counts["rerouted"] = result.moved
        return result
    except Exception as exc:  # noqa: BLE001 - the data is committed; re-routing can be run again
        log.exception("re-routing after import run %s failed", run.pk)
        notes.append(f"re-routing failed ({exc.__class__.__name__}: {exc}); run `manage.py reroute`")


def _dataset(spec):
    dataset = Dataset.objects.filter(code=spec.dataset).first()
    if dataset is None:
        dataset = Dataset(code=spec.dataset, target=spec.target, name=spec.dataset_name or spec.dataset,
                          source_url=str(spec.raw.get("source_url") or ""), licence=str(spec.raw.get("licence") or ""))
        # A new facility dataset gets its partition from the import itself (an attached generation): creating
        # an empty one here would lock the whole facilities table for the length of the run.
        dataset.defer_partition = True
        dataset.save()
    if dataset.target != spec.target:
        raise ImportFailure(f"dataset {spec.dataset} holds {dataset.target}, not {spec.target}: use another dataset code")
    return dataset


def city_geometry():
    """The city's extent: the union of its active admin areas (None when none are loaded)."""
    with connection.cursor() as cur:
        cur.execute("SELECT ST_AsBinary(ST_Union(geom)) FROM facilities_adminarea WHERE valid_to IS NULL")
        wkb = cur.fetchone()[0]
    if wkb is None:
        return None
    city = shapely.from_wkb(bytes(wkb))
    shapely.prepare(city)
    return city


def _authority_lookups():
    rows = Authority.objects.active().values_list("id", "code", "inn", "ogrn", "short_name", "name")
    lookups = {"code": {}, "inn": {}, "ogrn": {}, "name": {}}

    def put(kind, key, value):
        if not key:
            return
        old = lookups[kind].get(key)
        lookups[kind][key] = value if old in (None, value) else "ambiguous"

    for pk, code, inn, ogrn, short_name, name in rows:
        put("code", code, pk)
        put("inn", inn, pk)
        put("ogrn", ogrn, pk)
        put("name", short_name, pk)
        put("name", name, pk)
    return lookups


def _department_lookup():
    """"AUTHORITY_CODE/DEPARTMENT_CODE" -> department id, and "AUTHORITY_CODE" -> its main department's id."""
    out = {}
    for pk, code, authority in Department.objects.filter(authority__valid_to__isnull=True).values_list(
            "id", "code", "authority__code"):
        out[f"{authority}/{code}"] = pk
        if code == "main":
            out[authority] = pk
    return out


def _prepare(spec, source):
    extra = {}
    if spec.target == "categories":
        declared = spec.options.get("types", {})
        type_codes = set(FacilityType.objects.values_list("code", flat=True)) | set(declared)
        prepared = prepare.prepare_categories(spec, source, type_codes=type_codes, departments=_department_lookup())
        extra["declared_types"] = declared
    elif spec.target == "assignments":
        prepared = prepare.prepare_assignments(spec, source)
    elif spec.target == "holidays":
        prepared = prepare.prepare_holidays(spec, source)
    elif spec.target == "working_weeks":
        prepared = working_weeks.prepare(spec, source)
    elif spec.target == "authorities":
        lookups = _authority_lookups()
        known = {"code": set(lookups["code"]),
                 "inn": {k: c for c, pk in lookups["code"].items() for k, p in lookups["inn"].items() if p == pk},
                 "ogrn": {k: c for c, pk in lookups["code"].items() for k, p in lookups["ogrn"].items() if p == pk}}
        prepared = prepare.prepare_authorities(spec, source, known_codes=known)
    else:
        def area_lookup(level, match):
            field_name = {"key": "source_key"}.get(match, match)
            out = {}
            for pk, value in AdminArea.objects.active().filter(level=level).values_list("id", field_name):
                out[value] = pk if value not in out else out[value]
            return out

        codes = set(Authority.objects.values_list("code", flat=True))
        prepared = prepare.prepare_areas(spec, source, area_lookup=area_lookup, authority_codes=codes)
    return prepared, extra


def _load(cur, spec, dataset, prepared, extra, commit, run, progress):
    full = spec.mode == "full"
    sql_rejects, changed_ids = [], None
    if spec.target == "categories":
        _create_declared_types(extra["declared_types"])
        load.stage_categories(cur, prepared, progress)
        counts = load.diff_categories(cur, dataset.pk, full)
        if commit:
            changed_ids = load.upsert_categories(cur, dataset.pk, full=full)
    elif spec.target == "assignments":
        sql_rejects = load.stage_assignments(cur, prepared, progress)
        counts = load.diff_assignments(cur, dataset.pk, full)
        if commit:
            load.upsert_assignments(cur, dataset.pk, full=full)
    elif spec.target == "working_weeks":
        counts = working_weeks.load(cur, prepared, dataset.pk, full=full, commit=commit, progress=progress)
    elif spec.target == "holidays":
        load.stage_holidays(cur, prepared, progress)
        counts = load.diff_holidays(cur, dataset.pk, full)
        if commit:
            load.upsert_holidays(cur, dataset.pk, full=full)
    elif spec.target == "authorities":
        load.stage_authorities(cur, prepared, progress)
        with_parent = "parent" in spec.options
        counts = load.diff_authorities(cur, dataset.pk, full, with_parent)
        if commit:
            load.upsert_authorities(cur, dataset.pk, full=full, with_parent=with_parent,
                                    with_department="department" in spec.values)
    else:
        load.stage_areas(cur, prepared, progress)
        level = spec.options["level"]
        counts = load.diff_areas(cur, dataset.pk, level, full)
        if commit:
            juris = spec.options.get("jurisdiction")
            changed_ids = load.upsert_areas(cur, dataset.pk, level, full=full,
                                            jurisdiction_kind=juris["kind"] if juris else None)
    return counts, sql_rejects, changed_ids


def _create_declared_types(declared):
    """Facility types a spec declares are created (or renamed) first, so new type codes resolve to ids."""
    for code, names in declared.items():
        FacilityType.objects.update_or_create(code=code, defaults={
            "name_ru": names["ru"], "name_en": names["en"], "description": names["description"]})


def runs_dir(database=None):
    """IMPORTS_DIR/<database name> (default: this connection's): run numbers are a database's own, so two databases
    sharing IMPORTS_DIR (the demo and a test run, two cities) never write each other's reports and rejects."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(database or connection.settings_dict["NAME"])).strip(".") or "_"
    return Path(settings.IMPORTS_DIR) / name


def _write_report(result, spec):
    run = result.run
    folder = runs_dir() / f"run-{run.pk}"
    folder.mkdir(parents=True, exist_ok=True)
    report_path = folder / "report.txt"
    rejects_path = folder / "rejects.csv"
    with open(rejects_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["row", "key", "reason"])
        writer.writerows(result.rejects)
    run.report_path, run.rejects_path = str(report_path), str(rejects_path)
    result.report_text = format_report(result, spec)
    report_path.write_text(result.report_text, encoding="utf-8")


def format_report(result, spec):
    run, c = result.run, result.counts
    mode = "COMMIT" if run.commit else "DRY RUN"
    lines = [
        f"Import run #{run.pk} [{mode}] of {run.file_name} into dataset {spec.dataset} ({spec.target}, {spec.mode})",
        f"  file sha256  {run.file_sha256}",
        f"  read         {c.get('read', 0):>9}",
        f"  created      {c.get('created', 0):>9}",
        f"  updated      {c.get('updated', 0):>9}",
        f"  unchanged    {c.get('unchanged', 0):>9}",
        f"  retired      {c.get('retired', 0):>9}",
        f"  rejected     {c.get('rejected', 0):>9}",
        f"  repaired     {c.get('repaired', 0):>9}  (invalid geometries fixed with make_valid)",
    ]
    if "rerouted" in c:
        lines.append(f"  re-routed    {c['rerouted']:>9}  (open complaints whose department changed)")
    if c.get("reprojected_from"):
        lines.append(f"  reprojected from {c['reprojected_from']} to EPSG:4326")
    for note in result.notes:
        lines.append(f"  note: {note}")
    if result.rejects:
        lines.append("Rejected rows (row, key, reason):")
        for row_no, key, reason in result.rejects[:20]:
            lines.append(f"  row {row_no}: {key!s:.40} — {reason}")
        if len(result.rejects) > 20:
            lines.append(f"  ... and {len(result.rejects) - 20} more")
    # Named inside the imports folder only: the report is shown on the upload page too.
    lines.append(f"Report: {_in_imports(run.report_path)}")
    lines.append(f"Rejects: {_in_imports(run.rejects_path)}")
    if run.commit:
        lines.append("Committed." if run.status == ImportRun.Status.COMMITTED else "Committed: nothing to change.")
    else:
        lines.append("Dry run: nothing was changed. Run again with --commit to apply.")
    return "\n".join(lines) + "\n"


def _in_imports(path):
    """A file of the imports folder, named from that folder (e.g. run-7/report.txt)."""
    try:
        return str(Path(path).relative_to(Path(settings.IMPORTS_DIR)))
    except ValueError:
        return Path(path).name
