"""Admin pages for the service catalogue, the routing table, holidays and (read-only) routing decisions.

The catalogue is normally loaded through the importers (target `categories`, `assignments`, `holidays`); edits
made here re-route the open complaints they affect once saved (complaints.signals): a worker does it, and
the "Re-route requests" page shows each one pending or done, with how many complaints it moved.
"""
from django.contrib import admin

from geo_ourcity.languages import translated

from .models import (Category, CategoryAttribute, Holiday, RerouteRequest, RoutingAssignment, RoutingDecision,
                     SuggestionModel, WorkingWeek)


class CategoryAttributeInline(admin.StackedInline):
    model = CategoryAttribute
    extra = 0
    fields = [("code", "datatype", "required", "variable", "order"), "description_i18n",
              "datatype_description", "values"]


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "group", "rule", "area_level", "radius_m", "deadline_days", "active"]
    list_filter = ["active", "rule", "area_level"]
    search_fields = ["code", "name_i18n", "keywords"]
    filter_horizontal = ["facility_types"]
    autocomplete_fields = ["department"]
    readonly_fields = ["dataset", "source_key"]
    inlines = [CategoryAttributeInline]
    fieldsets = [
        (None, {"fields": ["code", "name_i18n", "group_i18n", "description_i18n", "keywords", "keywords_en",
                           "active"]}),
        ("Routing", {"fields": ["rule", "area_level", "facility_types", "radius_m", "department", "deadline_days"]}),
        ("Source", {"fields": ["dataset", "source_key"]}),
    ]

    @admin.display(description="name")
    def name(self, obj):
        return translated(obj.name_i18n)

    @admin.display(description="group")
    def group(self, obj):
        return translated(obj.group_i18n)


@admin.register(RoutingAssignment)
class RoutingAssignmentAdmin(admin.ModelAdmin):
    list_display = ["authority", "category", "department", "dataset"]
    list_filter = ["dataset", "authority__kind"]
    search_fields = ["authority__short_name", "authority__code", "category__code", "department__name"]
    autocomplete_fields = ["authority", "category", "department"]
    list_select_related = ["authority", "category", "department__authority", "dataset"]


@admin.register(Holiday)
class HolidayAdmin(admin.ModelAdmin):
    list_display = ["date", "name", "dataset"]
    date_hierarchy = "date"


@admin.register(WorkingWeek)
class WorkingWeekAdmin(admin.ModelAdmin):
    list_display = ["year", "days", "dataset"]


@admin.register(RoutingDecision)
class RoutingDecisionAdmin(admin.ModelAdmin):
    """Decisions are immutable: a re-route stores a new one."""

    list_display = ["id", "created_at", "rule", "department", "distance_m", "engine_version"]
    list_filter = ["rule", "engine_version"]
    list_select_related = ["department__authority"]
    search_fields = ["explanation_ru", "explanation_en"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SuggestionModel)
class SuggestionModelAdmin(admin.ModelAdmin):
    """The category-suggestion models learned from the history (routing.suggest_model): trained by
    `manage.py train_suggestions` and the scheduler, never uploaded. Only `active` may be changed: clearing it on
    the newest falls back to the one before (or to the catalogue's words alone)."""

    list_display = ["version", "created_at", "active", "samples", "train_seconds", "metrics"]
    list_editable = ["active"]
    fields = ["version", "created_at", "active", "samples", "train_seconds", "classes", "params", "metrics"]
    readonly_fields = ["version", "created_at", "samples", "train_seconds", "classes", "params", "metrics"]

    def has_add_permission(self, request):
        return False


@admin.register(RerouteRequest)
class RerouteRequestAdmin(admin.ModelAdmin):
    """The re-routes that edits and imports asked for: pending until a worker has done them (routing.requests)."""

    list_display = ["id", "created_at", "reason", "state", "scope", "moved", "considered", "done_at", "batch",
                    "attempts"]
    list_filter = ["state"]
    search_fields = ["reason"]
    date_hierarchy = "created_at"
    readonly_fields = ["reason", "everything", "facilities", "areas", "categories", "state", "created_at", "done_at",
                       "attempts", "considered", "moved", "batch", "error"]

    @admin.display(description="scope")
    def scope(self, request_):
        if request_.everything:
            return "every open complaint"
        parts = [f"{len(getattr(request_, k))} {k}" for k in ("facilities", "areas", "categories")
                 if getattr(request_, k)]
        return ", ".join(parts) or "who answers (no search)"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
