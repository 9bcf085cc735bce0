from django.contrib import admin, messages

from .keys import new_secret
from .models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are issued here (or with `manage.py create_api_key NAME`); the clear key is shown once, on creation."""

    list_display = ["name", "prefix", "active", "rate_limit", "created_at", "last_used_at"]
    list_filter = ["active"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]

    def get_fields(self, request, obj=None):
        return ["name", "rate_limit"] if obj is None else ["name", "active", "rate_limit", "prefix", "created_at",
                                                           "last_used_at"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        raw = new_secret(obj)
        super().save_model(request, obj, form, change)
        messages.warning(request, f"API key for {obj.name}: {raw} — copy it now: it is not stored and won't be "
                                  "shown again.")
