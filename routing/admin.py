"""Admin pages for the service catalogue, the routing table, holidays and (read-only) routing decisions.

The catalogue is normally loaded through the importers (target `categories`, `assignments`, `holidays`); edits
made here re-route the open complaints they affect when saved (routing.signals).
"""
from django.contrib import admin

from .models import Category, CategoryAttribute, Holiday, RoutingAssignment, RoutingDecision, WorkingWeek


class CategoryAttributeInline(admin.StackedInline):
    model = CategoryAttribute
    extra = 0
    fields = [("code", "datatype", "required", "variable", "order"), ("description_ru", "description_en"),
              "datatype_description", "values"]


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["code", "name_ru", "group_ru", "rule", "radius_m", "deadline_days", "active"]
    list_filter = ["active", "rule", "group_ru"]
    search_fields = ["code", "name_ru", "name_en", "keywords"]
    filter_horizontal = ["facility_types"]
    autocomplete_fields = ["department"]
    readonly_fields = ["dataset", "source_key"]
    inlines = [CategoryAttributeInline]
    fieldsets = [
        (None, {"fields": ["code", ("name_ru", "name_en"), ("group_ru", "group_en"), ("description_ru", "description_en"),
                           "keywords", "active"]}),
        ("Routing", {"fields": ["rule", "facility_types", "radius_m", "fallback_level", "department",
                                "deadline_days"]}),
        ("Source", {"fields": ["dataset", "source_key"]}),
    ]


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
