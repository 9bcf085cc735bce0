"""The city registry: who owns what, and which authority answers for which area.

`facilities` imports none of the project's other apps: routing, complaints and importers build on it.
"""
from django.conf import settings
from django.contrib.gis.db import models
from django.db import connection
from django.db.models import Q


class Dataset(models.Model):
    """A source of registry rows (a published file), the unit an import replaces.

    Facilities are stored in a table partitioned by dataset: each dataset's facilities live in a partition of
    their own, so a large import builds a new partition and switches it in at once (see importers.core).
    """

    class Target(models.TextChoices):
        AREAS = "areas", "admin areas"
        AUTHORITIES = "authorities", "authorities"
        FACILITIES = "facilities", "facilities"
        CATEGORIES = "categories", "service catalogue"
        ASSIGNMENTS = "assignments", "routing table"
        HOLIDAYS = "holidays", "holidays"
        WORKING_WEEKS = "working_weeks", "working weeks"
        ADDRESSES = "addresses", "addresses"

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=300, blank=True)
    target = models.CharField(max_length=16, choices=Target.choices)
    source_url = models.CharField(max_length=500, blank=True)
    licence = models.CharField(max_length=300, blank=True)
    # The physical partition of facilities_facility that holds this dataset's facilities.
    partition_table = models.CharField(max_length=63, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return self.code

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        if self.target == self.Target.FACILITIES and not self.partition_table and not getattr(
                self, "defer_partition", False):
            self.partition_table = create_facility_partition(self.pk)
            Dataset.objects.filter(pk=self.pk).update(partition_table=self.partition_table)
            Generation.objects.create(dataset=self, state=Generation.State.ACTIVE, table_name=self.partition_table,
                                      counts={"rows": 0, "active": 0})


class Generation(models.Model):
    """One generation of a facilities dataset (as MapIt's Generation): the partition table that holds the dataset's
    facilities from one commit on. Each commit that changes a dataset's facilities makes a new one active; the one
    it replaces is kept as `previous` until the next commit, so that the dataset can be rolled back to it
    (`manage.py generations DATASET --rollback`). Written by the import pipeline (importers.load)."""

    class State(models.TextChoices):
        ACTIVE = "active", "active (what routing reads)"
        PREVIOUS = "previous", "previous (kept: the dataset can be rolled back to it)"
        DROPPED = "dropped", "replaced (its table is dropped)"
        UNDONE = "undone", "undone by a rollback (its table is dropped)"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="generations")
    created_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(max_length=16, choices=State.choices)
    table_name = models.CharField(max_length=63, help_text="The table that holds this generation's facilities")
    counts = models.JSONField(default=dict, blank=True, help_text="What the commit that made it did, and its rows")
    # The import run that made it (importers.ImportRun; facilities imports no other app, so a plain number).
    run_id = models.IntegerField(null=True, blank=True)
    actor = models.CharField(max_length=150, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The place search reads a generation once its table has the search index and the vocabulary its names' stems
    # (facilities.search.generation_make_searchable, just after the commit that made it): the import's transaction
    # does not build them, and a table without the index is never searched (a scan of every name).
    searchable = models.BooleanField(default=False)

    class Meta:
        ordering = ["dataset", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["dataset"], condition=Q(state="active"), name="generation_one_active"),
            models.UniqueConstraint(fields=["dataset"], condition=Q(state="previous"), name="generation_one_previous"),
        ]

    def __str__(self):
        return f"{self.dataset_id}#{self.pk} {self.state}"


def create_facility_partition(dataset_id, suffix=""):
    """Create (attached) the partition of facilities_facility for a dataset; return its table name."""
    name = f"facilities_facility_d{int(dataset_id)}{suffix}"
    with connection.cursor() as cur:
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF facilities_facility "
            f"FOR VALUES IN ({int(dataset_id)})"
        )
    return name


class ValidityQuerySet(models.QuerySet):
    def active(self):
        return self.filter(valid_to__isnull=True)


class Authority(models.Model):
    """An organisation that owns facilities or has jurisdiction over an area."""

    class Kind(models.TextChoices):
        CITY = "city", "city government"
        CITY_DEPARTMENT = "city_department", "city department"
        PREFECTURE = "prefecture", "okrug prefecture"
        DISTRICT_COUNCIL = "district_council", "district council"
        INSTITUTION = "institution", "state institution"
        CONTRACTOR = "contractor", "contractor"
        OTHER = "other", "other"

    code = models.CharField(max_length=64, unique=True, help_text="Stable identifier used by specs and routing data")
    name = models.CharField(max_length=500)
    short_name = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=Kind.choices, default=Kind.OTHER)
    inn = models.CharField("INN", max_length=12, blank=True, db_index=True)
    ogrn = models.CharField("OGRN", max_length=15, blank=True, db_index=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.PROTECT)
    # Issue 10: its departments' answers wait for a moderator (imported: authorities spec key moderate_answers).
    moderate_answers = models.BooleanField(default=False, db_default=False)
    source_key = models.CharField(max_length=200, blank=True)
    valid_from = models.DateTimeField(auto_now_add=True)
    valid_to = models.DateTimeField(null=True, blank=True)

    objects = ValidityQuerySet.as_manager()

    class Meta:
        ordering = ["short_name"]
        verbose_name_plural = "authorities"
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "source_key"], condition=Q(dataset__isnull=False), name="authority_source_unique"
            )
        ]

    def __str__(self):
        return self.short_name


class Department(models.Model):
    """The unit of an authority that works tickets; staff users belong to departments."""

    authority = models.ForeignKey(Authority, on_delete=models.CASCADE, related_name="departments")
    code = models.CharField(max_length=64, default="main")
    name = models.CharField(max_length=300)
    is_triage = models.BooleanField(default=False, help_text="City-wide triage: gets what no rule routes")
    staff = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="departments")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["authority", "code"], name="department_code_unique")]
        # Who works a department's tickets (and so reads its residents' contact data) is given by administrators:
        # `change_department` edits a department, this permission its staff (facilities.access).
        permissions = [("change_department_membership", "Can change who belongs to a department")]

    def __str__(self):
        return self.display_name

    @property
    def display_name(self):
        """The name shown to residents and integrators: always names the authority (Open311 agency_responsible)."""
        short = self.authority.short_name
        return self.name if short in self.name else f"{self.name} ({short})"


class AreaLevel(models.Model):
    """A level of the city's admin areas (okrug, district; borough, ward, neighbourhood ...): data, declared by the
    areas spec that loads its areas (importers, docs/importing.md). `rank` orders them: a smaller rank is a larger
    area ("the covering areas" come back smallest first). Its name is translated: {language code: text}."""

    code = models.SlugField(max_length=16, unique=True, help_text="Stable identifier used by specs and routing rules")
    rank = models.PositiveSmallIntegerField(help_text="0 for the largest areas; larger numbers nest inside smaller")
    name_i18n = models.JSONField(default=dict, blank=True, help_text='{"en": "Ward", ...}: one per configured language')
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        ordering = ["rank", "code"]

    def __str__(self):
        return self.code


class AdminArea(models.Model):
    """An area of one of the city's levels (AreaLevel): a MultiPolygon with official codes and the authority with
    jurisdiction. `level_id` is the level's code (the column `level`, which SQL reads as the code)."""

    name = models.CharField(max_length=200)
    level = models.ForeignKey(AreaLevel, to_field="code", db_column="level", on_delete=models.PROTECT,
                              related_name="areas")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    oktmo = models.CharField("OKTMO", max_length=11, blank=True, db_index=True)
    okato = models.CharField("OKATO", max_length=11, blank=True, db_index=True)
    authority = models.ForeignKey(
        Authority, null=True, blank=True, on_delete=models.SET_NULL, related_name="areas",
        help_text="The authority with jurisdiction over this area",
    )
    geom = models.MultiPolygonField(srid=4326)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.PROTECT)
    source_key = models.CharField(max_length=200, blank=True)
    valid_from = models.DateTimeField(auto_now_add=True)
    valid_to = models.DateTimeField(null=True, blank=True)

    objects = ValidityQuerySet.as_manager()

    class Meta:
        ordering = ["level__rank", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "source_key"], condition=Q(dataset__isnull=False), name="area_source_unique"
            )
        ]

    def __str__(self):
        return f"{self.name} ({self.level_id})"

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        subdivide_areas([self.pk])


class AdminAreaPiece(models.Model):
    """ST_Subdivide pieces of an area: point lookups run on these small polygons, not the big one."""

    area = models.ForeignKey(AdminArea, on_delete=models.CASCADE, related_name="pieces")
    geom = models.PolygonField(srid=4326)


def subdivide_areas(area_ids, max_vertices=128):
    """Recompute the subdivided pieces of the given areas (set-based)."""
    ids = [int(i) for i in area_ids]
    if not ids:
        return
    with connection.cursor() as cur:
        cur.execute("DELETE FROM facilities_adminareapiece WHERE area_id = ANY(%s)", [ids])
        cur.execute(
            """
            INSERT INTO facilities_adminareapiece (area_id, geom)
            SELECT a.id, p.geom FROM facilities_adminarea a,
                   LATERAL (SELECT (ST_Dump(ST_Subdivide(a.geom, %s))).geom) p
            WHERE a.id = ANY(%s) AND GeometryType(p.geom) = 'POLYGON'
            """,
            [max_vertices, ids],
        )


# The longest name of a facility type in one language (a translated field is JSON: the limit is ours).
FACILITY_TYPE_NAME_MAX = 200


class FacilityType(models.Model):
    """A kind of facility (school, bus stop ...). Its name is translated: {language code: text}, one per configured
    language (docs/importing.md, `types`); a language without one shows the default language's, else another's
    (geo_ourcity.languages.translated). The admin asks for the default language's."""

    code = models.SlugField(max_length=64, unique=True)
    name_i18n = models.JSONField(default=dict, blank=True, help_text='{"en": "School", ...}: one per configured language')
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return self.name or self.code

    def clean(self):
        """The admin's check of the name: {language: text} for configured languages, the default language's given."""
        from django.core.exceptions import ValidationError

        from geo_ourcity.languages import configured_languages, default_language

        names = self.name_i18n
        languages = configured_languages()
        if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
            raise ValidationError({"name_i18n": "a mapping of language code to name, e.g. {\"en\": \"School\"}"})
        unknown = sorted(set(names) - set(languages))
        if unknown:
            raise ValidationError({"name_i18n": f"{unknown[0]!r} is not a configured language "
                                                f"({', '.join(languages)})"})
        if not (names.get(default_language()) or "").strip():
            raise ValidationError({"name_i18n": f"the name in the default language ({default_language()}) is required"})
        if any(len(v) > FACILITY_TYPE_NAME_MAX for v in names.values()):
            raise ValidationError({"name_i18n": f"a name is at most {FACILITY_TYPE_NAME_MAX} characters"})

    @property
    def name(self):
        """The name in the active language, else the default language's, else any (translated())."""
        from geo_ourcity.languages import translated

        return translated(self.name_i18n) or self.code


class Facility(models.Model):
    """A piece of city infrastructure (any geometry) and the authority that owns it.

    The table is partitioned by dataset (created by migration 0001 in SQL). `id` is unique by construction (one
    sequence) but not by a database constraint, which a partitioned table can not have on `id` alone; tables
    that point at facilities therefore use `db_constraint=False`. Facilities are never deleted by imports: a
    facility that leaves the registry gets `valid_to`, so old complaints that point at it stay explained.
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT)
    source_key = models.CharField(max_length=200)
    type = models.ForeignKey(FacilityType, on_delete=models.PROTECT)
    owner = models.ForeignKey(Authority, null=True, blank=True, on_delete=models.PROTECT, related_name="facilities")
    name = models.CharField(max_length=500, blank=True)
    address = models.CharField(max_length=500, blank=True)
    attrs = models.JSONField(default=dict, blank=True)
    geom = models.GeometryField(srid=4326)
    valid_from = models.DateTimeField(auto_now_add=True)
    valid_to = models.DateTimeField(null=True, blank=True)

    objects = ValidityQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "facilities"
        constraints = [models.UniqueConstraint(fields=["dataset", "source_key"], name="facility_source_unique")]

    def __str__(self):
        return self.name or f"{self.type_id}:{self.source_key}"


class Address(models.Model):
    """A postal address with its point (the `addresses` import target, importers/addresses.py): what the place search
    (facilities.search) finds besides the facilities' names and addresses and the areas' names. `label` is the full
    address as shown; `street` and `house` its parts when the source has them. Searched through the indexed
    expression facilities_search_key(label) (migration 0008)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT)
    source_key = models.CharField(max_length=200)
    label = models.CharField(max_length=500)
    street = models.CharField(max_length=300, blank=True)
    house = models.CharField(max_length=100, blank=True)
    district = models.CharField(max_length=200, blank=True, help_text="as the source names it (shown, not routed)")
    geom = models.PointField(srid=4326)

    class Meta:
        verbose_name_plural = "addresses"
        constraints = [models.UniqueConstraint(fields=["dataset", "source_key"], name="address_source_unique")]

    def __str__(self):
        return self.label


class SearchTerm(models.Model):
    """The place search's vocabulary: every stem (facilities_search_key lexeme) of the searchable names, so that a
    mistyped word of a query is matched to the stems that exist (pg_trgm similarity on this small table, as
    PostgreSQL's pg_trgm documentation suggests), then searched exactly. Filled by facilities.search.search_terms_add
    when names are imported; a stem left behind by a retired row only ever matches nothing. `ndoc`: how many names
    of the largest source hold the stem (ts_stat's count at the import): a stem nearly all names hold ("дом")
    narrows nothing and is left out of the search's index condition (facilities.search.COMMON_TERM_DOCS)."""

    term = models.CharField(max_length=200, primary_key=True)
    ndoc = models.PositiveIntegerField(default=0, db_default=0,
                                       help_text="names holding this stem, at most (the largest source's count)")

    def __str__(self):
        return self.term


class MembershipChange(models.Model):
    """One change of who belongs where: a user's departments, groups, permissions or flags, or a group's
    permissions. Written by facilities.audit on every path through the ORM (admin, staff pages, commands, shell);
    never edited."""

    class Kind(models.TextChoices):
        DEPARTMENTS = "departments", "departments"
        GROUPS = "groups", "groups"
        PERMISSIONS = "permissions", "user permissions"
        FLAGS = "flags", "active / staff / superuser"
        GROUP_PERMISSIONS = "group_permissions", "group permissions"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Who made the change: the logged-in user of the request, else the process (a command, a shell).
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_label = models.CharField(max_length=300)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # Whose access changed: a user, or (for group permissions) a group; the label keeps the name at the time.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    subject_label = models.CharField(max_length=300)
    before = models.JSONField(null=True, blank=True, help_text="Before the change (empty for a new user)")
    after = models.JSONField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["user", "-at"], name="membership_user_at")]

    def __str__(self):
        return f"{self.subject_label}: {self.get_kind_display()}"
