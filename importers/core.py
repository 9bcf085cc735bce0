"""The import pipeline, shared by `manage.py import_dataset` and the data-staff upload page.

    run_import(path, spec, commit=False) -> ImportResult

read (pyogrio / data.mos.ru JSON / CSV) -> validate (the Arrow engine of stream.py, for every target) -> COPY
into a staging table -> one classification of each row -> (commit only) apply exactly those marks -> report;
one class per target (targets.py). Everything that touches the registry runs in one transaction: a dry run
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

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from facilities.models import Dataset
from facilities.search import generations_make_searchable, search_terms_add

from . import load, sources
from .errors import ImportFailure, public_text
from .models import ImportRun
from .spec import load_spec
from .targets import TARGETS

log = logging.getLogger(__name__)

# Test hook: seconds to wait after all work is done, just before COMMIT (used by the kill test).
PAUSE_ENV = "OURCITY_IMPORT_PAUSE_BEFORE_COMMIT"
# Targets whose names the place search finds: a commit adds their stems to its vocabulary.
SEARCHED_TARGETS = ("facilities", "areas", "addresses")
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
    reroute: object = None  # complaints.services.RerouteResult of the re-route after the commit, if one ran


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
    run = ImportRun.objects.create(
        dataset=Dataset.objects.filter(code=spec_obj.dataset).first(), dataset_code=spec_obj.dataset, user=user,
        actor=actor, file_name=original_name or path.name, file_sha256="", spec=spec_obj.raw,
        commit=commit, backend_pid=pid)
    # The file's hash is computed beside the import (hashlib releases the GIL), not before it: a facilities
    # import starts it once its validating and copying are done (both cores are busy until then; the index
    # builds that follow use one), every other import at once.
    run.sha256_future = None
    run.start_hash = lambda: _start_hash(run, path)
    if spec_obj.target != "facilities":
        run.start_hash()
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


def _start_hash(run, path):
    if run.sha256_future is None:
        hasher = ThreadPoolExecutor(max_workers=1)
        run.sha256_future = hasher.submit(file_sha256, path)
        hasher.shutdown(wait=False)


def _sha256(run):
    """The file hash computed beside the run (see run_import)."""
    if not run.file_sha256:
        run.start_hash()
        run.file_sha256 = run.sha256_future.result()
    return run.file_sha256


def _finish_failed(run, error, detail=""):
    # The data transaction is gone by now (rolled back); this write is on its own.
    ImportRun.objects.filter(pk=run.pk).update(status=ImportRun.Status.FAILED, finished_at=timezone.now(),
                                               file_sha256=_sha256(run),
                                               error=(error + ("\n\n" + detail if detail else "")))
    run.status, run.error = ImportRun.Status.FAILED, error


def _run(run, path, spec, commit, progress, reroute=True):
    job = TARGETS[spec.target](path, spec, progress)  # reads and validates
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_xact_lock(hashtext('geo_ourcity.import:' || %s))", [spec.dataset])
            if not cur.fetchone()[0]:
                raise ImportFailure(f"another import of dataset {spec.dataset} is running; try again when it ends")
            dataset = _dataset(spec)
            run.dataset = dataset
            progress.step("staging")
            counts, rejects = job.load(cur, dataset, commit, run)
            if commit and spec.target in SEARCHED_TARGETS and spec.target != "facilities" \
                    and (counts["created"] or counts["updated"]):
                # the place search's vocabulary (facilities.search); an import that adds or changes no name adds none.
                # A facilities generation gets its index and stems just after the commit (below).
                search_terms_add(cur, target=spec.target, dataset_id=dataset.pk)
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
        load.tidy_generations(connection)
    if commit and spec.target == "facilities" and changed:
        # The new generation's search index and vocabulary, outside the import's transaction (facilities migration
        # 0016): routing reads it from the commit on, the place search from the end of this step.
        progress.step("making the new generation searchable")
        generations_make_searchable(dataset_id=run.dataset.pk)
    rerouted = None
    if commit and reroute and changed and spec.target in REROUTE_TARGETS:
        progress.step("re-routing open complaints")
        rerouted = reroute_after_import(run, spec.target, counts, job.notes, job.changed_ids)
    if not commit:
        run.status = ImportRun.Status.DRY_RUN
        ImportRun.objects.filter(pk=run.pk).update(status=run.status, finished_at=timezone.now(), counts=counts,
                                                   dataset=Dataset.objects.filter(code=spec.dataset).first(),
                                                   file_sha256=_sha256(run))
    return ImportResult(run=run, counts=counts, rejects=rejects, notes=job.notes, reroute=rerouted)


def reroute_after_import(run, target, counts, notes, changed_ids=None):
    """Re-route the open complaints this commit moved. The import stands even if this fails: say so.

    Authorities and the routing table move no geometry: the facilities and areas each complaint's decision found
    still stand, and only who answers for them is decided again. Facilities, areas and categories: the import
    says which it changed, and only the complaints those can concern search again (None: it could not say, e.g.
    a first import of a million facilities; then every complaint does)."""
    try:
        from complaints.services import complaints_reroute  # the one re-route service (complaints applies it)

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
