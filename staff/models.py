"""The staff workspace's own records: exports of big ticket lists, made on the task queue."""
from django.conf import settings
from django.db import models


class ExportJob(models.Model):
    """A CSV export too big to stream in the request (settings.EXPORT_QUEUE_ROWS): made by a worker
    (staff.tasks.export_make) with the asker's own scoping (their departments), kept through the storage API
    (default_storage) and offered to the asker only, until it expires (EXPORT_KEEP_HOURS)."""

    class State(models.TextChoices):
        QUEUED = "queued", "queued"
        DONE = "done", "done"
        FAILED = "failed", "failed"
        EXPIRED = "expired", "expired"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    filters = models.JSONField(help_text="the ticket list's query string, as the asker sent it")
    language = models.CharField(max_length=16)
    base_url = models.CharField(max_length=300, help_text="scheme and host of the links in the file")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    rows = models.IntegerField(null=True, blank=True)
    file = models.CharField(max_length=300, blank=True, help_text="its name in default_storage")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class RegistryCorrection(models.Model):
    """A correction of the registry that repeated hand-ons propose (staff.corrections): a facility, an admin area or
    a category whose complaints keep being handed on to one other authority (complaints.handons). Found by the
    scheduler (staff.tasks.corrections_find) or on demand; decided by data staff on /staff/registry/: accepted (the
    correction is imported through the importers' pipeline, a partial update of the subject's dataset, and the open
    complaints re-routed) or dismissed with a reason. Every decision stays recorded here."""

    class Kind(models.TextChoices):
        FACILITY = "facility", "facility owner"
        AREA = "area", "area jurisdiction"
        CATEGORY = "category", "category rule"

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        QUEUED = "queued", "accepted, being imported"
        ACCEPTED = "accepted", "accepted (imported)"
        FAILED = "failed", "accepted, the import failed"
        DISMISSED = "dismissed", "dismissed"
        OUTDATED = "outdated", "no longer proposed (the registry or the hand-ons changed)"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The facility, area or category (a plain number: facilities are partitioned, and areas and categories may be
    # retired; the label keeps what it was called when found).
    subject_id = models.BigIntegerField()
    subject_label = models.CharField(max_length=600)
    dataset_code = models.CharField(max_length=64, blank=True, help_text="the subject's dataset")
    registry_authority = models.ForeignKey("facilities.Authority", null=True, on_delete=models.SET_NULL,
                                           related_name="+", help_text="who the registry named when it was found")
    authority = models.ForeignKey("facilities.Authority", on_delete=models.PROTECT, related_name="+",
                                  help_text="the authority the handed-on complaints ended with")
    complaints = models.PositiveIntegerField(help_text="handed-on complaints in the window")
    complaint_ids = models.JSONField(default=list)
    reasons = models.JSONField(default=list, help_text="the reasons staff gave, most recent first")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    found_at = models.DateTimeField(auto_now_add=True)
    refreshed_at = models.DateTimeField(auto_now=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, help_text="why it was dismissed; what the import did or why it failed")
    import_run = models.ForeignKey("importers.ImportRun", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    rerouted = models.IntegerField(null=True, blank=True, help_text="open complaints the import moved")

    class Meta:
        ordering = ["-complaints", "-found_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["kind", "subject_id", "authority"],
                                               condition=models.Q(state__in=["pending", "queued"]),
                                               name="registry_correction_one_open")]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.subject_label} -> {self.authority_id} ({self.state})"
