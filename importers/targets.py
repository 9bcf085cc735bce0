"""One class per import target: its spec schema, its validation, its staging, one classification of each row
(created, updated, unchanged, retired or rejected) and an apply step that writes exactly what was classified.

    target = TARGETS[spec.target](source, spec, progress)   # reads and validates (the one Arrow engine)
    counts, rejects = target.load(cur, dataset, commit, run)  # stage -> classify -> (commit only) apply

The dry run stops after classify(): its counts are the marks that apply() then writes, so a dry run and the
commit of the same file and registry can not disagree (tests/importers/test_one_classification.py).
"""
from facilities.models import AreaLevel, FacilityType

from . import addresses, load, prepare, working_weeks
from .facility_job import FacilitiesTarget, create_declared_types
from .errors import ImportFailure
from .spec import target_keys


class RowTarget:
    """A target read whole and validated in bulk (prepare.py), staged by COPY and classified in SQL (load.py)."""

    name = None

    @classmethod
    def schema(cls):
        """The spec keys of this target (besides the common ones): importers.spec.target_keys."""
        return target_keys(cls.name)

    def __init__(self, path, spec, progress):
        self.spec, self.progress = spec, progress
        self.changed_ids = None  # areas or categories: the ids the commit changed or retired (for the re-route)
        progress.step("reading")
        source = prepare.read(path, spec.source)
        prepare.check_fields(spec, source)
        prepare.add_derived(spec, source)
        progress.step("validating")
        self.prepared = self.validate(source)
        self.notes = self.prepared.notes
        progress.start(len(self.prepared.rows))

    # the steps each target defines
    def validate(self, source):
        raise NotImplementedError

    def stage(self, cur, dataset):
        """COPY the accepted rows into import_stage; return the rows the database rejects."""
        raise NotImplementedError

    def classify(self, cur, dataset):
        raise NotImplementedError

    def apply(self, cur, dataset):
        raise NotImplementedError

    @property
    def full(self):
        return self.spec.mode == "full"

    def load(self, cur, dataset, commit, run):
        load.stage_rejected_keys(cur, [key for _, key, _ in self.prepared.rejects])
        sql_rejects = self.stage(cur, dataset) or []
        load.new_marks(cur)
        counts = self.classify(cur, dataset)
        if commit:
            self.changed_ids = self.apply(cur, dataset)
        return {**self.prepared.counts, **counts}, sorted(self.prepared.rejects + sql_rejects)


class AuthoritiesTarget(RowTarget):
    name = "authorities"

    def validate(self, source):
        return prepare.prepare_authorities(self.spec, source)

    def stage(self, cur, dataset):
        load.stage_authorities(cur, self.prepared, self.progress)

    def options(self):
        return {"with_parent": "parent" in self.spec.options, "with_department": "department" in self.spec.values,
                "with_moderation": "moderate_answers" in self.spec.values}

    def classify(self, cur, dataset):
        return load.classify_authorities(cur, dataset.pk, self.full, **self.options())

    def apply(self, cur, dataset):
        load.apply_authorities(cur, dataset.pk, **self.options())
        load.retire_authorities(cur)


def area_level_codes():
    """The codes of the city's area levels (facilities.AreaLevel), largest first."""
    return list(AreaLevel.objects.order_by("rank", "code").values_list("code", flat=True))


def check_area_level(code, where, declared=()):
    """An area level a spec names must be one of the city's (or be declared by this spec)."""
    known = area_level_codes()
    if code not in known and code not in declared:
        raise ImportFailure(f"spec: {where} {code!r} is not one of the city's area levels "
                            f"({', '.join(known) or 'none yet'}): declare it in its areas spec as "
                            "level: {code, rank, name_<language>}")


def declare_area_level(spec, dataset=None):
    """The level an areas spec declares is created, or its rank and names updated (like a spec's facility types)."""
    declared = spec.options.get("level_declared")
    if declared:
        AreaLevel.objects.update_or_create(code=spec.options["level"], defaults={**declared, "dataset": dataset})


class AreasTarget(RowTarget):
    name = "areas"

    def __init__(self, path, spec, progress):
        declared = [spec.options["level"]] if spec.options.get("level_declared") else []
        check_area_level(spec.options["level"], "level", declared)
        if spec.options.get("parent"):
            check_area_level(spec.options["parent"].extra["level"], "parent.level", declared)
        super().__init__(path, spec, progress)

    def validate(self, source):
        return prepare.prepare_areas(self.spec, source)

    @property
    def jurisdiction_kind(self):
        juris = self.spec.options.get("jurisdiction")
        return juris["kind"] if juris else None

    def stage(self, cur, dataset):
        declare_area_level(self.spec, dataset)
        load.stage_areas(cur, self.prepared, self.progress)

    def classify(self, cur, dataset):
        return load.classify_areas(cur, dataset.pk, self.spec.options["level"], self.full, self.jurisdiction_kind)

    def apply(self, cur, dataset):
        return load.apply_areas(cur, dataset.pk, self.spec.options["level"], jurisdiction_kind=self.jurisdiction_kind)


class CategoriesTarget(RowTarget):
    name = "categories"

    def validate(self, source):
        declared = self.spec.options.get("types", {})
        type_codes = set(FacilityType.objects.values_list("code", flat=True)) | set(declared)
        return prepare.prepare_categories(self.spec, source, type_codes=type_codes, levels=area_level_codes())

    def stage(self, cur, dataset):
        create_declared_types(self.spec.options.get("types", {}))
        load.stage_categories(cur, self.prepared, self.progress)

    def classify(self, cur, dataset):
        return load.classify_categories(cur, dataset.pk, self.full)

    def apply(self, cur, dataset):
        return load.apply_categories(cur, dataset.pk)


class AssignmentsTarget(RowTarget):
    name = "assignments"

    def validate(self, source):
        return prepare.prepare_assignments(self.spec, source)

    def stage(self, cur, dataset):
        return load.stage_assignments(cur, self.prepared, self.progress)

    def classify(self, cur, dataset):
        return load.classify_assignments(cur, dataset.pk, self.full)

    def apply(self, cur, dataset):
        load.apply_assignments(cur, dataset.pk)


class HolidaysTarget(RowTarget):
    name = "holidays"

    def validate(self, source):
        return prepare.prepare_holidays(self.spec, source)

    def stage(self, cur, dataset):
        load.stage_holidays(cur, self.prepared, self.progress)

    def classify(self, cur, dataset):
        return load.classify_holidays(cur, dataset.pk, self.full)

    def apply(self, cur, dataset):
        load.apply_holidays(cur, dataset.pk)


class WorkingWeeksTarget(RowTarget):
    name = "working_weeks"

    def validate(self, source):
        return working_weeks.prepare(self.spec, source)

    def stage(self, cur, dataset):
        working_weeks.stage(cur, self.prepared, self.progress)

    def classify(self, cur, dataset):
        return working_weeks.classify(cur, dataset.pk, self.full)

    def apply(self, cur, dataset):
        working_weeks.apply(cur, dataset.pk)


class AddressesTarget(RowTarget):
    name = "addresses"

    def validate(self, source):
        return addresses.prepare(self.spec, source)

    def stage(self, cur, dataset):
        addresses.stage(cur, self.prepared, self.progress)

    def classify(self, cur, dataset):
        return addresses.classify(cur, dataset.pk, self.full)

    def apply(self, cur, dataset):
        addresses.apply(cur, dataset.pk)


TARGETS = {cls.name: cls for cls in (AreasTarget, AuthoritiesTarget, FacilitiesTarget, CategoriesTarget,
                                     AssignmentsTarget, HolidaysTarget, WorkingWeeksTarget, AddressesTarget)}
