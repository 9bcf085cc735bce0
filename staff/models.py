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
