"""Importing facilities: the streaming path (stream.py) wired to the dataset's partition generations (load.py).

A dataset whose partition is empty gets its rows COPYed straight into a new generation table, which is then
indexed and attached: no staging copy and no join. A dataset that has rows, or whose owners are found by area, is
staged, compared with what the registry holds, and rebuilt only if something changed, so a no-change re-import
writes nothing. Either way the registry's facilities table sees no DDL until the switch (load.switch_generation):
a dataset new to the registry gets its partition then, not at the start of the run (creating a partition takes an
ACCESS EXCLUSIVE lock on facilities_facility, which would hold every complaint's routing for the whole run).
"""
import shapely
from django.db import connection

from facilities.models import AreaLevel, FacilityType

from . import load, refs, stream
from .errors import ImportFailure
from .spec import target_keys

COLUMNS = ["source_key", "type_id", "owner_id", "name", "address", "attrs", "geom"]
COPY_READ_SIZE = 1 << 20


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


def create_declared_types(declared):
    """Facility types a spec declares are created (or renamed) first, so new type codes resolve to ids."""
    for code, names in declared.items():
        FacilityType.objects.update_or_create(code=code, defaults={
            "name_i18n": names["name_i18n"], "description": names["description"]})


class FacilitiesTarget:
    """The facilities target: validated batch by batch while COPY loads them (stream.py), classified against the
    dataset's active generation (load.classify_facilities), applied by building and switching in the next
    generation (load.swap_facilities), which becomes the dataset's active Generation row."""

    name = "facilities"

    @classmethod
    def schema(cls):
        return target_keys(cls.name)

    def __init__(self, path, spec, progress):
        declared = spec.options.get("types", {})
        type_codes = set(FacilityType.objects.values_list("code", flat=True)) | set(declared)
        tv = spec.values["type"]
        referenced = {c for c in [tv.constant, tv.default, *(tv.value_map or {}).values()] if c}
        missing = sorted(referenced - type_codes)
        if missing:
            raise ImportFailure(f"spec: facility type {missing[0]!r} does not exist: declare it under 'types' "
                                "or create it in the admin")
        for owner in spec.options.get("owners") or []:
            if owner["match"] == "area":
                levels = list(AreaLevel.objects.order_by("rank").values_list("code", flat=True))
                if owner["level"] not in levels:
                    raise ImportFailure(f"spec: owner.area_level {owner['level']!r} is not one of the city's area "
                                        f"levels ({', '.join(levels) or 'none yet'})")
        self.spec, self.progress = spec, progress
        self.declared = declared
        self.notes = []
        # The facilities the commit created, moved, retyped or retired, for the re-route (load.moved_facilities);
        # None: too many to name, so every complaint searches again.
        self.changed_ids = None
        progress.step("reading")
        self.stream = stream.open_stream(path, spec.source, fields=spec.source_fields())
        missing = sorted(f for f in spec.source_fields() if f not in self.stream.columns)
        if missing:
            have = ", ".join(map(str, self.stream.columns[:40]))
            raise ImportFailure(f"spec refers to field {missing[0]!r}, which the file does not have (fields: {have})")
        if spec.derived:
            self.stream.batches = self._with_derived(self.stream.batches)
        self.crs = stream.source_crs(spec, self.stream)
        self.city = city_geometry() if spec.require_in_city else None
        self.owners = refs.lookups("authority")
        if spec.require_in_city and self.city is None:
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
        rejects = self.stage(cur, dataset, run)
        counts = self.classify(cur, dataset)
        if commit:
            self.apply(cur, dataset, run, counts)
        result = self.validator.result
        counts = {**counts, "read": result.rows, "repaired": result.repaired}
        if result.reprojected_from:
            counts["reprojected_from"] = result.reprojected_from
        return counts, sorted(rejects)

    def stage(self, cur, dataset, run):
        """Validate and COPY: straight into a new generation table when the dataset holds no rows (`direct`: every
        row is created), else into import_stage. Returns the rejects."""
        spec, progress = self.spec, self.progress
        create_declared_types(self.declared)
        type_ids = dict(FacilityType.objects.values_list("code", "id"))
        self.partition = partition = dataset.partition_table  # "" for a dataset this run creates
        fresh = True
        if partition:
            # Readers go on; writers to this dataset (admin edits) wait until the new generation is in.
            cur.execute(f"LOCK TABLE {partition} IN SHARE MODE")
            cur.execute(f"SELECT EXISTS (SELECT 1 FROM {partition})")
            fresh = not cur.fetchone()[0]
        by_area = [rule["level"] for rule in spec.options.get("owners") or [] if rule["match"] == "area"]
        self.direct = direct = fresh and not by_area  # owners found by area go through the stage
        self.validator = validator = stream.FacilityValidator(
            spec, self.stream, type_ids=type_ids, owners=self.owners, city=self.city, crs=self.crs,
            with_row_no=not direct)
        self.new_name = new_name = f"facilities_facility_d{dataset.pk}_r{run.pk}"
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
        getattr(run, "start_hash", lambda: None)()  # the run's file hash, beside what follows (core.run_import)
        duplicates = validator.duplicates()
        rejects = validator.result.rejects + duplicates
        load.stage_rejected_keys(cur, [key for _, key, _ in rejects])
        self.accepted = sum(len(k) for k in validator.result.keys) - len(duplicates)
        if direct:
            if duplicates:
                # A fresh heap filled by one COPY is in file order: the lowest ctid of a key is its first row.
                cur.execute(f"DELETE FROM {new_name} a USING {new_name} b "
                            "WHERE a.source_key = b.source_key AND a.ctid > b.ctid")
        else:
            if duplicates:
                cur.execute("DELETE FROM import_stage WHERE row_no = ANY(%s)", [[r for r, _, _ in duplicates]])
            self.staged = self.accepted
            if by_area:
                progress.step("finding owners by area")
                by_area_rejects = load.resolve_owners_by_area(cur, by_area[0])
                self.staged -= len(by_area_rejects)
                rejects += by_area_rejects
        return rejects

    def classify(self, cur, dataset):
        """The direct path's rows are all created (the dataset holds none); else one hash join marks them."""
        if self.direct:
            return {"created": self.accepted, "updated": 0, "unchanged": 0, "retired": 0}
        self.progress.step("comparing with the registry")
        return load.classify_facilities(cur, self.partition, self.spec.mode == "full", self.staged)

    def apply(self, cur, dataset, run, counts):
        partition, new_name = self.partition, self.new_name
        switched = False
        if self.direct:
            if counts["created"]:
                if counts["created"] <= load.MOVED_CAP:  # all of them are new
                    self.changed_ids = load.moved_facilities(cur, new_name)
                load.index_and_switch(cur, dataset.pk, partition, new_name, self.progress, analyze=False)
                switched = True
            else:
                cur.execute(f"DROP TABLE {new_name}")
        elif counts["created"] + counts["updated"] + counts["retired"]:
            self.changed_ids = load.swap_facilities(cur, dataset.pk, partition, new_name,
                                                    self.spec.mode == "full", self.progress)
            switched = True
        if not switched and not partition:  # a new dataset with nothing in it still needs its partition
            load.attach_empty_generation(cur, dataset.pk, new_name, self.progress)
            switched = True
        if switched:
            load.record_generation(cur, dataset.pk, new_name, run_id=run.pk, actor=run.actor,
                                   counts={k: counts[k] for k in ("created", "updated", "unchanged", "retired")},
                                   rows=counts["created"] if self.direct or not partition else None)
