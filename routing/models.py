"""The service catalogue (Open311 services) and the routing decisions it leads to."""
from django.contrib.gis.db import models
from django.core.validators import RegexValidator
from django.db.models import Q

from geo_ourcity.languages import configured_languages, default_language, translated

from facilities.models import AdminArea, AreaLevel, Authority, Dataset, Department, Facility, FacilityType


class Category(models.Model):
    """A kind of complaint: an Open311 service. Loaded through the importers (target `categories`)."""

    class Rule(models.TextChoices):
        FACILITY = "facility", "owner of the facility it is about, else the fall-back"
        AREA = "area", "authority with jurisdiction over the area of a level"
        DEPARTMENT = "department", "a fixed department"

    code = models.SlugField(max_length=64, unique=True, help_text="Open311 service_code")
    # Translated fields: {language code: text}, one per configured language (settings.LANGUAGES); the default
    # language's is required (the importers check it), the others fall back to it (geo_ourcity.languages).
    name_i18n = models.JSONField(default=dict, help_text='{"en": "Pothole", ...}')
    group_i18n = models.JSONField(default=dict, help_text='{"en": "Roads", ...}')
    description_i18n = models.JSONField(default=dict, blank=True)
    keywords = models.CharField(max_length=500, blank=True,
                                help_text="comma-separated, in the city's language (Russian in the demo)")
    keywords_en = models.CharField(max_length=500, blank=True, help_text="comma-separated, in English")
    facility_types = models.ManyToManyField(FacilityType, blank=True, related_name="categories")
    radius_m = models.PositiveIntegerField(default=0, help_text="search radius for the nearest facility, metres")
    deadline_days = models.PositiveSmallIntegerField(default=8, help_text="working days to answer")
    # The answer cycle (issue 10), imported with the catalogue (spec keys moderate_answers, confirm_days).
    moderate_answers = models.BooleanField(default=False, db_default=False, help_text="answers wait for a moderator before the public "
                                           "sees them (also when the department's authority says so)")
    confirm_days = models.PositiveSmallIntegerField(default=15, db_default=15, help_text="days the resident has to confirm or "
                                                    "dispute an answer; silence then closes it")
    rule = models.CharField(max_length=16, choices=Rule.choices, default=Rule.AREA)
    area_level = models.ForeignKey(
        AreaLevel, to_field="code", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="the area rule: the level whose covering area's authority answers; the facility rule: the same as "
                  "its fall-back when no facility matches (none: the category's department, else triage)")
    department = models.ForeignKey(Department, null=True, blank=True, on_delete=models.PROTECT,
                                   help_text="for the department rule (and the facility rule's department fallback)")
    active = models.BooleanField(default=True)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.PROTECT)
    source_key = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "categories"

    def __str__(self):
        return self.code

    @property
    def group_key(self):
        """The group's name in the default language: how an alert, a feed or a form names the group (a name in any
        configured language finds it too: in_group)."""
        return translated(self.group_i18n, default_language())


def in_group(name, prefix=""):
    """A Q for the categories of the group named `name` in any configured language (prefix: "category__" ...)."""
    q = Q(pk__in=[])
    for lang in configured_languages():
        q |= Q(**{f"{prefix}group_i18n__{lang}": name})
    return q


class CategoryAttribute(models.Model):
    """An extra question of a category (an Open311 attribute)."""

    class Datatype(models.TextChoices):
        STRING = "string"
        NUMBER = "number"
        DATETIME = "datetime"
        TEXT = "text"
        SINGLE = "singlevaluelist"
        MULTI = "multivaluelist"

    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="attributes")
    code = models.SlugField(max_length=64)
    datatype = models.CharField(max_length=16, choices=Datatype.choices)
    required = models.BooleanField(default=False)
    variable = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=0)
    description_i18n = models.JSONField(default=dict, help_text='{"en": "Which side?", ...}')
    datatype_description = models.CharField(max_length=200, blank=True)
    values = models.JSONField(default=list, blank=True,
                              help_text='[{"key": ..., "name_i18n": {"en": ..., ...}}]')

    class Meta:
        ordering = ["category", "order", "code"]
        constraints = [models.UniqueConstraint(fields=["category", "code"], name="category_attribute_unique")]


class RoutingAssignment(models.Model):
    """The routing table: which department of an authority handles a category (data, not code).

    Lookup order for (authority, category): an exact row; a row of the authority with no category; the
    authority's `main` department.
    """

    authority = models.ForeignKey(Authority, on_delete=models.CASCADE, related_name="assignments")
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.CASCADE)
    department = models.ForeignKey(Department, on_delete=models.CASCADE)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.PROTECT)
    source_key = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["authority", "category"], name="assignment_unique"),
            models.UniqueConstraint(fields=["authority"], condition=models.Q(category__isnull=True),
                                    name="assignment_default_unique"),
        ]


class Holiday(models.Model):
    """Non-working days (besides weekends) for deadlines."""

    date = models.DateField(unique=True)
    name = models.CharField(max_length=200, blank=True)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        ordering = ["date"]


class WorkingWeek(models.Model):
    """The days of the week that are worked, from `year` on until the next row's year (data, imported: target
    working_weeks). Before the first row's year the first row holds; with no row at all, Monday to Friday.
    Deadlines skip the other days of the week and the Holiday dates (routing.deadlines)."""

    year = models.PositiveSmallIntegerField(unique=True)
    days = models.CharField(max_length=7, help_text="ISO weekdays worked, in order: 12345 is Monday to Friday",
                            validators=[RegexValidator(r"^(?=.)1?2?3?4?5?6?7?$", "ISO weekdays in order, e.g. 12345")])
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        ordering = ["year"]

    def __str__(self):
        return f"{self.year}: {self.days}"


class RoutingDecision(models.Model):
    """Why a complaint went where it went. Immutable: a re-route stores a new decision."""

    class Rule(models.TextChoices):
        FACILITY_PICKED = "facility_picked"
        FACILITY_COVERS = "facility_covers"
        FACILITY_NEAREST = "facility_nearest"
        FACILITY_GROUP = "facility_group"  # inside a building of a type of the category's group (routing.engine)
        AREA = "area"
        DEPARTMENT = "department"
        TRIAGE = "triage"
        MANUAL = "manual"

    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="+")
    authority = models.ForeignKey(Authority, on_delete=models.PROTECT, related_name="+")
    facility = models.ForeignKey(Facility, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                                 related_name="+")
    area = models.ForeignKey(AdminArea, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    rule = models.CharField(max_length=24, choices=Rule.choices)
    distance_m = models.FloatField(null=True, blank=True)
    candidates = models.JSONField(default=list, blank=True)
    engine_version = models.CharField(max_length=16)
    explanation_ru = models.TextField()
    explanation_en = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)


class SuggestionModel(models.Model):
    """A category-suggestion model learned from the city's own history (routing.suggest_model): what residents
    wrote and the category each complaint ended with after staff corrected it.

    Stored as plain numbers and strings (an .npz archive read with allow_pickle=False, and JSON), never as a
    pickle: loading one runs no code, whoever wrote the row. The newest active row answers; `version` names it.
    """

    version = models.PositiveIntegerField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    active = models.BooleanField(default=True)
    classes = models.JSONField(help_text="the service codes, in the order of the weights' rows")
    params = models.JSONField(help_text="the text features' settings (analyzer, n-gram range, ...)")
    weights = models.BinaryField(help_text="npz: vocabulary, idf, coef, intercept (no pickles)")
    samples = models.PositiveIntegerField(help_text="complaints it learned from")
    train_seconds = models.FloatField()
    metrics = models.JSONField(default=dict, blank=True, help_text="top-1/top-3 on the history held out")

    class Meta:
        ordering = ["-version"]

    def __str__(self):
        return f"history-v{self.version}"


class RerouteRequest(models.Model):
    """A re-route of the open complaints that an edit of what routing reads (complaints.signals) or an import asked
    for: written in the edit's own transaction, done by a worker (complaints.tasks.reroute_run), which takes every
    pending request at once, so a burst of edits is one re-route (routing.requests). Shown in the admin."""

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        DONE = "done", "done"
        FAILED = "failed", "failed (tried again)"

    reason = models.CharField(max_length=300)
    # Search every open complaint again; else only around the ids given (None: that kind was not touched).
    everything = models.BooleanField(default=True)
    facilities = models.JSONField(null=True, blank=True)
    areas = models.JSONField(null=True, blank=True)
    categories = models.JSONField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    considered = models.IntegerField(null=True, blank=True)
    moved = models.IntegerField(null=True, blank=True)
    batch = models.IntegerField(null=True, blank=True, help_text="the request whose re-route did this one too")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["id"], condition=models.Q(state="pending"), name="reroute_pending")]

    def __str__(self):
        return f"re-route #{self.pk} ({self.state})"
