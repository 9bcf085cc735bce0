"""One class per import target: its spec schema, its validation, its staging, one classification of each row
(created, updated, unchanged, retired or rejected) and an apply step that writes exactly what was classified.

    target = TARGETS[spec.target](source, spec, progress)   # reads and validates (the one Arrow engine)
    counts, rejects = target.load(cur, dataset, commit, run)  # stage -> classify -> (commit only) apply

The dry run stops after classify(): its counts are the marks that apply() then writes, so a dry run and the
commit of the same file and registry can not disagree (tests/importers/test_one_classification.py).
"""
from facilities.models import AdminArea, Authority, Department, FacilityType

from . import addresses, load, prepare, working_weeks
from .facility_job import FacilitiesTarget, authority_lookups, create_declared_types
from .spec import TARGET_KEYS


class RowTarget:
    """A target read whole and validated in bulk (prepare.py), staged by COPY and classified in SQL (load.py)."""

    name = None

    @classmethod
    def schema(cls):
        """The spec keys of this target (besides the common ones): importers.spec.TARGET_KEYS."""
        return TARGET_KEYS[cls.name]

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


def department_lookup():
    """"AUTHORITY_CODE/DEPARTMENT_CODE" -> department id, and "AUTHORITY_CODE" -> its main department's id."""
    out = {}
    for pk, code, authority in Department.objects.filter(authority__valid_to__isnull=True).values_list(
            "id", "code", "authority__code"):
        out[f"{authority}/{code}"] = pk
        if code == "main":
            out[authority] = pk
    return out


class AuthoritiesTarget(RowTarget):
    name = "authorities"

    def validate(self, source):
        lookups = authority_lookups()
        known = {"code": set(lookups["code"]),
                 "inn": {k: c for c, pk in lookups["code"].items() for k, p in lookups["inn"].items() if p == pk},
                 "ogrn": {k: c for c, pk in lookups["code"].items() for k, p in lookups["ogrn"].items() if p == pk}}
        return prepare.prepare_authorities(self.spec, source, known_codes=known)

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


class AreasTarget(RowTarget):
    name = "areas"

    def validate(self, source):
        def area_lookup(level, match):
            field_name = {"key": "source_key"}.get(match, match)
            out = {}
            for pk, value in AdminArea.objects.active().filter(level=level).values_list("id", field_name):
                out[value] = pk if value not in out else out[value]
            return out

        codes = set(Authority.objects.values_list("code", flat=True))
        return prepare.prepare_areas(self.spec, source, area_lookup=area_lookup, authority_codes=codes)

    @property
    def jurisdiction_kind(self):
        juris = self.spec.options.get("jurisdiction")
        return juris["kind"] if juris else None

    def stage(self, cur, dataset):
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
        return prepare.prepare_categories(self.spec, source, type_codes=type_codes, departments=department_lookup())

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
