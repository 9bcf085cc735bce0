from django.contrib import admin
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from . import uploads, views
from .models import ImportRun
from .permissions import UPLOAD_PERMISSION


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    """The import log, read-only; its "Upload a dataset" page dry-runs an upload and commits it (importers.views)."""

    list_display = ["id", "started_at", "actor", "file_name", "short_sha256", "dataset_code", "status",
                    "counts_summary", "report_link"]
    list_filter = ["status", "commit", "dataset"]
    search_fields = ["file_name", "=file_sha256", "dataset_code", "actor"]
    list_select_related = ["dataset"]
    date_hierarchy = "started_at"
    # The run's page names no file of the server: its report and rejects are behind "report"; the traceback of a
    # failed run stays in the server's log.
    exclude = ["report_path", "rejects_path", "backend_pid", "error"]
    readonly_fields = ["report_link", "error_line"]

    def get_urls(self):
        def route(pattern, view, name):
            return path(pattern, self.admin_site.admin_view(view), {"model_admin": self},
                        name=f"importers_importrun_{name}")

        return [
            route("upload/", views.upload, "upload"),
            # The front's question (no admin_view: it answers 204/403, never a login redirect; reads no body).
            path("upload/allowed", views.upload_allowed, name="importers_importrun_upload_allowed"),
            route("<int:run_id>/report/", views.report, "report"),
            route("<int:run_id>/commit/", views.commit, "commit"),
            route("<int:run_id>/progress/", views.progress, "progress"),
            route("<int:run_id>/download/<str:kind>/", views.download, "download"),
        ] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_upload": request.user.has_perm(UPLOAD_PERMISSION)}
        return super().changelist_view(request, extra_context)

    # Runs are written by the pipeline only.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("sha256"), ordering="file_sha256")
    def short_sha256(self, run):
        return run.file_sha256[:12]

    @admin.display(description=_("counts"))
    def counts_summary(self, run):
        labels = dict(uploads.COUNT_LABELS)
        parts = [f"{labels[k]} {run.counts[k]}" for k in ("created", "updated", "unchanged", "retired", "rejected")
                 if run.counts.get(k)]
        return ", ".join(parts) or "-"

    @admin.display(description=_("report"))
    def report_link(self, run):
        return format_html('<a href="{}">{}</a>', reverse("admin:importers_importrun_report", args=[run.pk]),
                           _("report"))

    @admin.display(description=_("error"))
    def error_line(self, run):
        return run.error.split("\n\n")[0]
