"""Admin pages for complaints: read-only views of the lifecycle. State changes go through complaints.services
only (the admin would otherwise bypass the transition table and the history), so the only write here is the
moderation action "hide", which calls the service."""
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from .errors import ComplaintError
from .models import Alert, Answer, Complaint, ComplaintEvent, Follow, Outbox, Photo, Volunteer, VolunteerCheck
from .outbox import outbox_retry
from .services import complaint_hide


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class EventInline(ReadOnlyInline):
    model = ComplaintEvent
    fields = ["at", "actor_label", "kind", "from_state", "to_state", "from_department", "to_department", "reason",
              "public"]
    readonly_fields = fields


class AnswerInline(ReadOnlyInline):
    model = Answer
    fields = ["created_at", "department", "author", "text", "state", "moderated_by", "moderated_at", "return_reason"]
    readonly_fields = fields


class PhotoInline(ReadOnlyInline):
    model = Photo
    fields = ["file", "answer", "content_type", "width", "height", "created_at"]
    readonly_fields = fields


class OutboxInline(ReadOnlyInline):
    model = Outbox
    fields = ["kind", "recipient", "state", "attempts", "last_error", "created_at", "next_attempt_at", "sent_at"]
    readonly_fields = fields


@admin.register(Complaint)
class ComplaintAdmin(admin.ModelAdmin):
    list_display = ["tracking_code", "category", "state", "department", "submitted_at", "deadline", "reopen_count"]
    list_filter = ["state", "category"]
    search_fields = ["tracking_code", "token", "description", "address_string"]
    list_select_related = ["category", "department__authority"]
    date_hierarchy = "submitted_at"
    inlines = [EventInline, AnswerInline, PhotoInline, OutboxInline]
    actions = ["hide"]

    # The confirmation secret stays off every page: with SECRET_KEY it makes the resident's confirmation key.
    exclude = ["confirmation_secret"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Complaint._meta.fields if f.name not in self.exclude]

    def has_add_permission(self, request):
        return False  # complaints come from residents through complaint_create

    def has_delete_permission(self, request, obj=None):
        return False  # the history is append-only; moderation hides

    @admin.action(description=_("Hide the selected complaints (moderation)"))
    def hide(self, request, queryset):
        hidden = 0
        for complaint in queryset:
            try:
                complaint_hide(complaint=complaint, user=request.user, reason=_("Hidden by a moderator in the admin"))
                hidden += 1
            except ComplaintError as exc:
                self.message_user(request, f"{complaint.tracking_code}: {exc}", messages.WARNING)
        if hidden:
            self.message_user(request, _("%(n)d complaints hidden.") % {"n": hidden}, messages.SUCCESS)


@admin.register(Outbox)
class OutboxAdmin(admin.ModelAdmin):
    """The mail outbox, read-only: what was sent, what waits, what failed and why. The one write is "send again"
    for failed or cancelled mails (complaints.outbox.outbox_retry)."""

    list_display = ["id", "kind", "recipient", "state", "attempts", "created_at", "next_attempt_at", "sent_at",
                    "error_line"]
    list_filter = ["state", "kind"]
    search_fields = ["recipient", "=dedupe_key"]
    date_hierarchy = "created_at"
    readonly_fields = ["kind", "recipient", "language", "context", "dedupe_key", "complaint", "state", "attempts",
                       "last_error", "created_at", "next_attempt_at", "sent_at"]
    raw_id_fields = ["complaint"]
    actions = ["send_again"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("last error"))
    def error_line(self, entry):
        return entry.last_error[:120]

    @admin.action(description=_("Send the selected failed mails again"), permissions=["view"])
    def send_again(self, request, queryset):
        if not request.user.has_perm("complaints.change_outbox"):
            self.message_user(request, _("You may not send mails again."), messages.ERROR)
            return
        n = outbox_retry(entries=list(queryset))
        self.message_user(request, _("%(n)d mails will be sent again.") % {"n": n}, messages.SUCCESS)


# --- issue 10: volunteers (approved here by staff) and their checks (read-only: written by the check service) ---

@admin.register(Volunteer)
class VolunteerAdmin(admin.ModelAdmin):
    list_display = ["user", "approved", "approved_by", "approved_at"]
    list_filter = ["approved"]
    search_fields = ["user__username", "user__email"]
    filter_horizontal = ["districts"]
    fields = ["user", "districts", "approved", "note", "approved_by", "approved_at"]
    readonly_fields = ["approved_by", "approved_at"]
    raw_id_fields = ["user"]

    def save_model(self, request, obj, form, change):
        """Who approved a volunteer, and when, is recorded; a revoked approval clears both."""
        from django.utils import timezone

        if obj.approved and not obj.approved_at:
            obj.approved_by, obj.approved_at = request.user, timezone.now()
        elif not obj.approved:
            obj.approved_by, obj.approved_at = None, None
        super().save_model(request, obj, form, change)


@admin.register(VolunteerCheck)
class VolunteerCheckAdmin(admin.ModelAdmin):
    list_display = ["created_at", "complaint", "department", "verdict", "volunteer"]
    list_filter = ["verdict"]
    list_select_related = ["complaint", "department__authority", "volunteer__user"]


# --- hearing back (complaints.notify): who follows what, area alerts (read-only; an unwanted one is deleted) ---

class _ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Follow)
class FollowAdmin(_ReadOnlyAdmin):
    list_display = ("complaint", "email", "state", "source", "language", "created_at", "confirmed_at")
    list_filter = ("state", "source")
    search_fields = ("email", "=complaint__id")
    raw_id_fields = ("complaint",)
    readonly_fields = ("created_at", "confirmed_at")


@admin.register(Alert)
class AlertAdmin(_ReadOnlyAdmin):
    list_display = ("id", "email", "state", "frequency", "area", "group", "radius_m", "created_at")
    list_filter = ("state", "frequency")
    search_fields = ("email",)
    raw_id_fields = ("area",)
    readonly_fields = ("seen_up_to", "created_at", "confirmed_at")
