from django.conf import settings
from django.db import models

from facilities.models import Dataset


class ImportRun(models.Model):
    """One run of the import pipeline (dry run or commit): who, when, what file, what spec, what came of it."""

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        DRY_RUN = "dry_run", "dry run (nothing changed)"
        COMMITTED = "committed", "committed"
        NO_CHANGE = "no_change", "committed, nothing to change"
        FAILED = "failed", "failed (nothing changed)"
        ABORTED = "aborted", "aborted (killed; nothing changed)"

    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    dataset_code = models.CharField(max_length=64)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor = models.CharField(max_length=150, help_text="User name or OS user that started the run")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    file_name = models.CharField(max_length=500)
    file_sha256 = models.CharField(max_length=64)
    spec = models.JSONField()
    commit = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    counts = models.JSONField(default=dict, blank=True)
    report_path = models.CharField(max_length=500, blank=True)
    rejects_path = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    backend_pid = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return f"#{self.pk} {self.dataset_code} {self.status}"


class ImportCommit(models.Model):
    """The commit of a dry run from the upload page, on the task queue (importers.tasks.import_commit): queued by
    the page, run by a worker, its progress shown on the run's page. One per dry run (so a second click, or a
    retried task, never imports twice); `run` is the commit's own ImportRun once the pipeline has made it."""

    class State(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed (nothing changed)"

    dry_run = models.OneToOneField(ImportRun, on_delete=models.CASCADE, related_name="commit_job")
    run = models.OneToOneField(ImportRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    stage = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"commit of run #{self.dry_run_id}: {self.state}"
