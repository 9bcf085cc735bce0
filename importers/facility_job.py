"""Importing facilities: the streaming path (stream.py) wired to the dataset's partition generations (load.py).

A dataset whose partition is empty gets its rows COPYed straight into a new generation table, which is then
indexed and attached: no staging copy and no join. A dataset that has rows, or whose owners are found by area, is
staged, compared with what the registry holds, and rebuilt only if something changed, so a no-change re-import
writes nothing. Either way the registry's facilities table sees no DDL until the switch (load.switch_generation):
a dataset new to the registry gets its partition then, not at the start of the run (creating a partition takes an
ACCESS EXCLUSIVE lock on facilities_facility, which would hold every complaint's routing for the whole run).
"""
from facilities.models import FacilityType

from . import load, stream
from .errors import ImportFailure

COLUMNS = ["source_key", "type_id", "owner_id", "name", "address", "attrs", "geom"]
COPY_READ_SIZE = 1 << 20


class FacilityJob:
    def __init__(self, path, spec, progress, *, city, owners, create_types):
        self.spec, self.progress = spec, progress
        self.create_types = create_types  # creates the spec's declared types, inside the transaction
        self.notes = []
        # The facilities the commit created, moved, retyped or retired, for the re-route (load.moved_facilities);
        # None: too many to name, so every complaint searches again.
        self.changed_ids = None
        progress.step("reading")
        self.stream = stream.open_stream(path, spec.source)
        missing = sorted(f for f in spec.source_fields() if f not in self.stream.columns)
        if missing:
            have = ", ".join(map(str, self.stream.columns[:40]))
            raise ImportFailure(f"spec refers to field {missing[0]!r}, which the file does not have (fields: {have})")
        if spec.derived:
            self.stream.batches = self._with_derived(self.stream.batches)
        self.crs = stream.source_crs(spec, self.stream)
        self.city, self.owners = city, owners
        if spec.require_in_city and city is None:
            self.notes.append("no admin areas are loaded, so the in-city check was skipped")
        # Only the progress bar's total (the stream's own open counted it; formats without a count have none).
        progress.start(stream.feature_count(self.stream))

    def _with_derived(self, batches):
        for batch in batches:
            for name, value in self.spec.derived.items():
                column = stream.evaluate(value, batch.table, batch.table.num_rows)
                if value.value_map:
                    column = stream.pc.fill_null(stream.map_values(column, value.value_map, value.default), "")
                batch.table = batch.table.append_column(name, column)
            yield batch

    def load(self, cur, dataset, commit, run):
        spec, progress = self.spec, self.progress
        self.create_types()
        type_ids = dict(FacilityType.objects.values_list("code", "id"))
        partition = dataset.partition_table  # "" for a dataset this run creates
        fresh = True
        if partition:
            # Readers go on; writers to this dataset (admin edits) wait until the new generation is in.
            cur.execute(f"LOCK TABLE {partition} IN SHARE MODE")
            cur.execute(f"SELECT EXISTS (SELECT 1 FROM {partition})")
            fresh = not cur.fetchone()[0]
        owner = spec.options.get("owner")
        by_area = bool(owner and owner["match"] == "area")
        direct = fresh and not by_area  # owners found by area go through the stage (partition may be "")
        validator = stream.FacilityValidator(spec, self.stream, type_ids=type_ids, owners=self.owners,
                                             city=self.city, crs=self.crs, with_row_no=not direct)
        full = spec.mode == "full"
        new_name = f"facilities_facility_d{dataset.pk}_r{run.pk}"
        progress.step("validating and copying")
        if direct:
            load.create_generation(cur, dataset.pk, new_name)
            target, columns = new_name, COLUMNS
        else:
            load.new_stage(cur)
            cur.execute("""CREATE TEMP TABLE import_stage (row_no integer, source_key text, type_id bigint,
                           owner_id bigint, name text, address text, attrs jsonb, geom geometry(Geometry, 4326))
                           ON COMMIT DROP""")
            target, columns = "import_stage", ["row_no"] + COLUMNS
        reader = stream.ChunkReader(stream.ahead(validator.csv_batches(progress)))
        try:
            # FREEZE (the generation table is new in this transaction): rows are written frozen, so the index
            # builds and the first readers don't rewrite every page to set hint bits.
            freeze = ", FREEZE" if direct else ""
            cur.copy_expert(f"COPY {target} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv{freeze})", reader,
                            size=COPY_READ_SIZE)
        except Exception:
            if reader.error is not None:  # the real cause (a bad file), not the cancelled COPY
                raise reader.error from None
            raise
        result = validator.result
        duplicates = validator.duplicates()
        rejects = result.rejects + duplicates
        load.stage_rejected_keys(cur, [key for _, key, _ in rejects])
        accepted = sum(len(k) for k in result.keys) - len(duplicates)
        if direct:
            if duplicates:
                # A fresh heap filled by one COPY is in file order: the lowest ctid of a key is its first row.
                cur.execute(f"DELETE FROM {new_name} a USING {new_name} b "
                            "WHERE a.source_key = b.source_key AND a.ctid > b.ctid")
            counts = {"created": accepted, "updated": 0, "unchanged": 0, "retired": 0}
            if commit and accepted:
                if accepted <= load.MOVED_CAP:  # all of them are new
                    self.changed_ids = load.moved_facilities(cur, new_name)
                load.index_and_switch(cur, dataset.pk, partition, new_name, progress, analyze=False)
            else:
                cur.execute(f"DROP TABLE {new_name}")
                if commit and not partition:  # a new dataset with nothing in it still needs its partition
                    load.attach_empty_generation(cur, dataset.pk, new_name, progress)
        else:
            if duplicates:
                cur.execute("DELETE FROM import_stage WHERE row_no = ANY(%s)", [[r for r, _, _ in duplicates]])
            if by_area:
                progress.step("finding owners by area")
                rejects += load.resolve_owners_by_area(cur, owner["level"])
            progress.step("comparing with the registry")
            counts = load.diff_facilities(cur, partition, full)
            if commit and counts["created"] + counts["updated"] + counts["retired"]:
                self.changed_ids = load.swap_facilities(cur, dataset.pk, partition, new_name, full, progress)
            elif commit and not partition:  # a new dataset with nothing in it still needs its partition
                load.attach_empty_generation(cur, dataset.pk, new_name, progress)
        counts = {**counts, "read": result.rows, "repaired": result.repaired}
        if result.reprojected_from:
            counts["reprojected_from"] = result.reprojected_from
        return counts, sorted(rejects)

