"""A facilities dataset's generations (facilities.Generation): list them, and roll a dataset back to its previous
generation.

    generations_for(dataset_code) -> [Generation], newest first
    dataset_rollback(dataset_code=..., actor=..., commit=False) -> ImportResult

A rollback switches the previous generation back in (load.switch_generation, the switch every import uses), in
one transaction with its Generation rows and its import run; facilities that only the undone generation had stay
known, retired (valid_to), so the complaints that point at them stay explained. After the commit, the open
complaints around what moved are re-routed through the one service call imports use (core.reroute_after_import).
"""
import time

from django.db import connection, transaction
from django.utils import timezone

from facilities.models import Dataset, Generation
from facilities.search import generations_make_searchable

from . import load
from .core import ImportResult, mark_abandoned_runs, reroute_after_import
from .errors import ImportFailure
from .models import ImportRun

COLUMNS = "id, dataset_id, source_key, type_id, owner_id, name, address, attrs, geom, valid_from, valid_to"


def _dataset(code):
    dataset = Dataset.objects.filter(code=code).first()
    if dataset is None:
        raise ImportFailure(f"no dataset {code!r}")
    if dataset.target != Dataset.Target.FACILITIES:
        raise ImportFailure(f"dataset {code} holds {dataset.target}: only facilities datasets have generations")
    return dataset


def generations_for(dataset_code):
    return list(Generation.objects.filter(dataset=_dataset(dataset_code)).order_by("-id"))


def dataset_rollback(*, dataset_code, actor, user=None, commit=False, reroute=True):
    """Make the dataset's previous generation active again (a dry run unless `commit`): recorded as an import run."""
    dataset = _dataset(dataset_code)
    mark_abandoned_runs()
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    run = ImportRun.objects.create(dataset=dataset, dataset_code=dataset.code, user=user, actor=actor,
                                   file_name="(rollback to the previous generation)", file_sha256="",
                                   spec={"rollback": dataset.code}, commit=commit, backend_pid=pid)
    started = time.monotonic()
    try:
        counts, moved = _rollback(run, dataset, commit)
    except ImportFailure as exc:
        ImportRun.objects.filter(pk=run.pk).update(status=ImportRun.Status.FAILED, finished_at=timezone.now(),
                                                   error=str(exc))
        raise
    notes = []
    result = ImportResult(run=run, counts=counts, notes=notes)
    if commit:
        if not connection.in_atomic_block:
            load.tidy_generations(connection)
        generations_make_searchable(dataset_id=dataset.pk)  # if the generation brought back never was
        if reroute:
            result.reroute = reroute_after_import(run, "facilities", counts, notes, moved)
    counts["seconds"] = round(time.monotonic() - started, 2)
    run.status = ImportRun.Status.COMMITTED if commit else ImportRun.Status.DRY_RUN
    ImportRun.objects.filter(pk=run.pk).update(status=run.status, finished_at=timezone.now(), counts=counts)
    result.report_text = format_rollback(result, dataset)
    return result


def _rollback(run, dataset, commit):
    with transaction.atomic(), connection.cursor() as cur:
        # The lock every import of the dataset takes: no import runs beside a rollback.
        cur.execute("SELECT pg_try_advisory_xact_lock(hashtext('geo_ourcity.import:' || %s))", [dataset.code])
        if not cur.fetchone()[0]:
            raise ImportFailure(f"an import of dataset {dataset.code} is running; try again when it ends")
        active = Generation.objects.select_for_update().filter(dataset=dataset, state=Generation.State.ACTIVE).first()
        previous = Generation.objects.select_for_update().filter(dataset=dataset,
                                                                 state=Generation.State.PREVIOUS).first()
        if active is None or previous is None:
            raise ImportFailure(f"dataset {dataset.code} has no previous generation to roll back to (one is kept "
                                "from the commit before the last; a rollback or a first import leaves none)")
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", [previous.table_name])
        if not cur.fetchone()[0]:
            raise ImportFailure(f"the table of generation #{previous.pk} of dataset {dataset.code} is gone; "
                                "nothing was changed")
        current, kept = active.table_name, previous.table_name
        cur.execute(f"LOCK TABLE {current} IN SHARE MODE")  # admin edits wait; readers go on
        new_name = f"facilities_facility_d{dataset.pk}_r{run.pk}"
        cur.execute(f"ALTER TABLE {kept} RENAME TO {new_name}")
        # Facilities only the undone generation has stay known, retired: complaints may point at them.
        # (A kept generation whose foreign keys tidy_generations could not take off yet checks them now, not at
        # COMMIT: ALTER TABLE refuses a table with pending trigger events.)
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute(f"""INSERT INTO {new_name} ({COLUMNS})
                        SELECT {COLUMNS.replace("valid_to", "coalesce(valid_to, now())")} FROM {current} a
                        WHERE NOT EXISTS (SELECT 1 FROM {new_name} p WHERE p.id = a.id)""")
        cur.execute("SET CONSTRAINTS ALL DEFERRED")
        counts = _compare(cur, new_name, current)
        moved = load.moved_facilities(cur, new_name, current)
        cur.execute(f"ALTER TABLE {new_name} ADD CONSTRAINT {new_name}_ds CHECK (dataset_id = {int(dataset.pk)})")
        cur.execute(f"ALTER TABLE {new_name} ALTER COLUMN dataset_id SET DEFAULT {int(dataset.pk)}")
        cur.execute(f"ANALYZE {new_name}")
        load.switch_generation(cur, dataset.pk, current, new_name)
        cur.execute(f"SELECT count(*), count(*) FILTER (WHERE valid_to IS NULL) FROM {new_name}")
        rows, live = cur.fetchone()
        now = timezone.now()
        Generation.objects.filter(pk=active.pk).update(
            state=Generation.State.UNDONE, ended_at=now,
            table_name=load.RETIRED_PREFIX + new_name.removeprefix("facilities_facility_"))
        Generation.objects.filter(pk=previous.pk).update(state=Generation.State.ACTIVE, table_name=new_name,
                                                         ended_at=None,
                                                         counts={**previous.counts, "rows": rows, "active": live})
        counts.update({"rolled_back_from": active.pk, "rolled_back_to": previous.pk, "rejected": 0, "read": 0})
        if commit:
            ImportRun.objects.filter(pk=run.pk).update(status=ImportRun.Status.COMMITTED, counts=counts)
        else:
            transaction.set_rollback(True)
    return counts, moved


def _compare(cur, restored, current):
    """What the rollback does to the registry, in the import's classes: facilities it brings back (created),
    changes (updated), leaves (unchanged) and retires."""
    cur.execute(f"""
        SELECT count(*) FILTER (WHERE r.valid_to IS NULL AND (c.id IS NULL OR c.valid_to IS NOT NULL)),
               count(*) FILTER (WHERE r.valid_to IS NULL AND c.valid_to IS NULL
                                AND ROW(r.type_id, r.owner_id, r.name, r.address, r.attrs, r.geom)
                                    IS DISTINCT FROM ROW(c.type_id, c.owner_id, c.name, c.address, c.attrs, c.geom)),
               count(*) FILTER (WHERE r.valid_to IS NULL AND c.valid_to IS NULL
                                AND ROW(r.type_id, r.owner_id, r.name, r.address, r.attrs, r.geom)
                                    IS NOT DISTINCT FROM ROW(c.type_id, c.owner_id, c.name, c.address, c.attrs,
                                                             c.geom)),
               count(*) FILTER (WHERE r.valid_to IS NOT NULL AND c.valid_to IS NULL)
        FROM {restored} r LEFT JOIN {current} c ON c.id = r.id""")
    created, updated, unchanged, retired = cur.fetchone()
    return {"created": created, "updated": updated, "unchanged": unchanged, "retired": retired}


def format_rollback(result, dataset):
    run, c = result.run, result.counts
    mode = "COMMIT" if run.commit else "DRY RUN"
    lines = [f"Rollback run #{run.pk} [{mode}] of dataset {dataset.code}: generation #{c['rolled_back_from']} "
             f"-> #{c['rolled_back_to']}"]
    for name in ("created", "updated", "unchanged", "retired"):
        lines.append(f"  {name:<12} {c[name]:>9}")
    if "rerouted" in c:
        lines.append(f"  re-routed    {c['rerouted']:>9}  (open complaints whose department changed)")
    lines += [f"  note: {note}" for note in result.notes]
    lines.append("Committed." if run.commit else "Dry run: nothing was changed. Run again with --commit to apply.")
    return "\n".join(lines) + "\n"
