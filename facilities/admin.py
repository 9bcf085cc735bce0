"""Admin pages for the registry. Maps use LocalOSMWidget (OpenLayers from our static files, no CDN)."""
from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.contrib.gis.admin import GISModelAdmin
from django.core.paginator import Paginator
from django.db.models import Count
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from .access import may_change_department_staff, may_change_own_membership, may_change_users_and_groups
from .models import AdminArea, AreaLevel, Authority, Dataset, Department, Facility, FacilityType, MembershipChange
from .widgets import LocalOSMWidget


class ActiveFilter(admin.SimpleListFilter):
    """Active rows (valid_to is empty) or rows retired by an import or by hand."""

    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", _("active")), ("retired", _("retired"))]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(valid_to__isnull=True)
        if self.value() == "retired":
            return queryset.filter(valid_to__isnull=False)
        return queryset


class DatasetFilter(admin.RelatedFieldListFilter):
    """The dataset filter offers only the datasets that can hold this admin's model."""

    def field_choices(self, field, request, model_admin):
        return [(d.pk, str(d)) for d in Dataset.objects.filter(target=model_admin.dataset_target)]


@admin.display(boolean=True, description=_("active"), ordering="valid_to")
def is_active(obj):
    return obj.valid_to is None


class RegistryAdmin(admin.ModelAdmin):
    """Rows that come from a dataset: the dataset select offers only datasets of the right target."""

    dataset_target = None

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "dataset":
            kwargs["queryset"] = Dataset.objects.filter(target=self.dataset_target).exclude(
                target=Dataset.Target.FACILITIES, partition_table="")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class MapAdmin(RegistryAdmin, GISModelAdmin):
    """A registry model with a `geom`: edited on a map; lists never load geometries."""

    gis_widget = LocalOSMWidget

    def get_queryset(self, request):
        # The change page loads `geom` when its form needs it (one more query).
        return super().get_queryset(request).defer("geom")

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            # View-only: a summary, not megabytes of WKT.
            fields = ["geom_summary" if name == "geom" else name for name in fields]
        return fields

    @admin.display(description=_("geometry"))
    def geom_summary(self, obj):
        geom = obj.geom
        return _("%(type)s, %(points)d points, centre %(lon).5f %(lat).5f") % {
            "type": geom.geom_type, "points": geom.num_points, "lon": geom.centroid.x, "lat": geom.centroid.y}


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "target", "partition_table", "created_at"]
    list_filter = ["target"]
    search_fields = ["code", "name"]
    readonly_fields = ["partition_table", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        # A dataset keeps its target: its rows (and, for facilities, its partition) depend on it.
        return self.readonly_fields + (["target"] if obj else [])

    def has_delete_permission(self, request, obj=None):
        # Deleting a dataset would leave its facility partition behind; datasets stay, their rows get retired.
        return False


class DepartmentInline(admin.TabularInline):
    model = Department
    fields = ["code", "name", "is_triage"]
    extra = 0
    show_change_link = True


@admin.register(Authority)
class AuthorityAdmin(RegistryAdmin):
    dataset_target = Dataset.Target.AUTHORITIES
    list_display = ["short_name", "code", "kind", "inn", "ogrn", "parent", "dataset", is_active]
    list_filter = ["kind", ("dataset", DatasetFilter), ActiveFilter]
    search_fields = ["short_name", "name", "code", "=inn", "=ogrn", "source_key"]
    search_help_text = _("Name or code (part of it), INN or OGRN (exact), source key.")
    list_select_related = ["parent", "dataset"]
    autocomplete_fields = ["parent"]
    readonly_fields = ["valid_from"]
    inlines = [DepartmentInline]


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["name", "authority", "code", "is_triage", "staff_count"]
    list_filter = ["is_triage", "authority__kind"]
    search_fields = ["name", "code", "authority__short_name", "authority__code", "=authority__inn"]
    list_select_related = ["authority"]
    autocomplete_fields = ["authority"]
    filter_horizontal = ["staff"]

    def get_fields(self, request, obj=None):
        # Without the membership permission the form has no staff field: it is neither shown nor read from a POST.
        fields = super().get_fields(request, obj)
        return fields if may_change_department_staff(request.user) else [f for f in fields if f != "staff"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if "staff" not in form.base_fields or may_change_own_membership(request.user):
            return form
        actor = request.user

        class DepartmentForm(form):
            def clean_staff(self):
                staff = self.cleaned_data["staff"]
                was = self.instance.pk is not None and self.instance.staff.filter(pk=actor.pk).exists()
                if staff.filter(pk=actor.pk).exists() != was:
                    raise forms.ValidationError(
                        _("You can not add yourself to a department or remove yourself from one: an administrator "
                          "does that."), code="own_membership")
                return staff

        return DepartmentForm

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(staff_count=Count("staff"))

    @admin.display(description=_("staff"), ordering="staff_count")
    def staff_count(self, obj):
        return obj.staff_count


@admin.register(AdminArea)
class AdminAreaAdmin(MapAdmin):
    dataset_target = Dataset.Target.AREAS
    list_display = ["name", "level", "okato", "oktmo", "parent", "authority", "dataset", is_active]
    list_filter = ["level", ("dataset", DatasetFilter), ActiveFilter]
    search_fields = ["name", "=okato", "=oktmo", "source_key"]
    search_help_text = _("Name (part of it), OKATO or OKTMO (exact), source key.")
    list_select_related = ["parent", "authority", "dataset"]
    autocomplete_fields = ["parent", "authority"]
    readonly_fields = ["valid_from", "piece_count"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("parent__geom")

    @admin.display(description=_("subdivided pieces"))
    def piece_count(self, obj):
        # AdminAreaPiece rows are derived (recomputed when an area is saved), so they have no admin page.
        return obj.pieces.count() if obj.pk else "-"


@admin.register(AreaLevel)
class AreaLevelAdmin(admin.ModelAdmin):
    """The city's area levels, normally declared by the areas specs (importers)."""

    list_display = ["code", "rank", "name_i18n", "dataset"]
    ordering = ["rank", "code"]


@admin.register(FacilityType)
class FacilityTypeAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "name_i18n"]
    search_fields = ["code", "name_i18n"]


class CappedCountPaginator(Paginator):
    """Counts at most `cap` rows (one bounded query) instead of COUNT(*) over millions of facilities.

    Pages past the cap are not offered: search or filter to reach those rows.
    """

    cap = 10_000

    @cached_property
    def _bounded_count(self):
        return self.object_list[: self.cap + 1].count()

    @property
    def count(self):
        return min(self._bounded_count, self.cap)

    @property
    def capped(self):
        return self._bounded_count > self.cap


@admin.register(Facility)
class FacilityAdmin(MapAdmin):
    """Facilities: a table partitioned by dataset, possibly millions of rows.

    The list is counted up to a cap, sorted only by id (newest first, an index scan per partition), and every
    foreign key is a select of a small table or an autocomplete: never a select of facilities.
    """

    dataset_target = Dataset.Target.FACILITIES
    list_display = ["__str__", "type", "owner", "dataset", "source_key", is_active]
    list_filter = ["type", ("dataset", DatasetFilter), ActiveFilter]
    search_fields = ["name", "=source_key", "=owner__inn", "=owner__ogrn", "=owner__code"]
    search_help_text = _("Name (part of it); source key, or the owner's INN, OGRN or code (exact).")
    list_select_related = ["type", "owner", "dataset"]
    autocomplete_fields = ["owner"]
    readonly_fields = ["valid_from"]
    sortable_by = []
    show_full_result_count = False
    paginator = CappedCountPaginator


@admin.register(MembershipChange)
class MembershipChangeAdmin(admin.ModelAdmin):
    """The membership audit (facilities.audit), read-only; `view_membershipchange` (administrators) reads it."""

    list_display = ["at", "actor_label", "kind", "subject_label", "before", "after"]
    list_filter = ["kind"]
    search_fields = ["subject_label", "actor_label"]
    date_hierarchy = "at"
    fields = ["at", "actor", "actor_label", "kind", "user", "group", "subject_label", "before", "after"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# Accounts and groups: who belongs to which group, who is staff or superuser, who holds which permission. Only
# superusers change them (facilities.access): whoever else holds auth.change_user could otherwise make
# themselves a superuser, join the dispatchers, or reset another's password and log in as them.
class UsersAndGroupsWrites:
    def has_add_permission(self, request):
        return may_change_users_and_groups(request.user)

    def has_change_permission(self, request, obj=None):
        return may_change_users_and_groups(request.user)

    def has_delete_permission(self, request, obj=None):
        return may_change_users_and_groups(request.user)


class AccessUserAdmin(UsersAndGroupsWrites, UserAdmin):
    pass


class AccessGroupAdmin(UsersAndGroupsWrites, GroupAdmin):
    pass


for _model, _admin_class in ((get_user_model(), AccessUserAdmin), (Group, AccessGroupAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin_class)
