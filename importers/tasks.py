"""The importers' work on the task queue (geo_ourcity/celery.py; docs/deployment.md): the commit of a dry run
from the upload page (ImportCommit). `manage.py import_dataset --commit` still runs in the foreground.

A killed worker loses nothing: the task is acknowledged only once it has run (acks late), the import is
all-or-nothing (importers.core), and the task is idempotent by its ImportCommit's state and the commit's own
ImportRun: a task run again finds that run committed and imports nothing, or finds it aborted (its process died
before the COMMIT) and imports once more. The sweep (celery beat) queues again a commit whose task was lost.
"""
import contextvars
import datetime
import logging
import time

from celery import shared_task
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_save
from django.utils import timezone

from .core import REROUTE_TARGETS, Progress, mark_abandoned_runs
from .errors import ImportFailure
from .models import ImportCommit, ImportRun

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
PROGRESS_TTL = 24 * 3600
DONE_RUNS = (ImportRun.Status.COMMITTED, ImportRun.Status.NO_CHANGE)

# The ImportCommit whose import runs in this task: the ImportRun the pipeline makes for it is tied to it as soon
# as it exists (committed at once, before the import's own transaction), so a task run again can tell.
_current_commit = contextvars.ContextVar("importers_current_commit", default=None)


def _tie_run(sender, instance, created, **kwargs):
    job_id = _current_commit.get()
    if created and job_id is not None and instance.commit:
        ImportCommit.objects.filter(pk=job_id).update(run=instance)


post_save.connect(_tie_run, sender=ImportRun, dispatch_uid="importers.tasks.tie_run")


def progress_key(job_id):
    return f"importers:commit:{job_id}:progress"


def commit_progress(job):
    """What the run's page shows of a commit on the queue: stage, rows read, rows loaded (live, from the shared
    cache: the import's own writes are not visible until it commits), and the state."""
    live = cache.get(progress_key(job.pk)) or {}
    return {"state": job.state, "stage": live.get("stage") or job.stage, "rows_read": live.get("rows_read"),
            "rows_loaded": live.get("rows_loaded", 0), "run": job.run_id if job.state == job.State.DONE else None,
            "error": job.error.split("\n\n")[0]}


class QueueProgress(Progress):
    """The pipeline's progress callbacks, into the shared cache (at most every half second for row counts)."""

    def __init__(self, job_id):
        self.key, self.state, self.pushed = progress_key(job_id), {"stage": "", "rows_loaded": 0}, 0.0

    def start(self, total):
        self.state["rows_read"] = total
        self._push()

    def step(self, name):
        self.state["stage"] = name
        self._push()

    def advance(self, n):
        self.state["rows_loaded"] += n
        if time.monotonic() - self.pushed > 0.5:
            self._push()

    def close(self):
        self._push()

    def _push(self):
        self.pushed = time.monotonic()
        try:
            cache.set(self.key, dict(self.state), PROGRESS_TTL)
        except Exception:  # noqa: BLE001 - progress is a courtesy; the import must not fail for it
            log.warning("import progress not stored", exc_info=True)


def _claim(job_id):
    """Take the commit for this attempt, or say why not: (job, None) to run it, (None, outcome) if not."""
    with transaction.atomic():
        job = ImportCommit.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
        if job is None:
            return None, ("busy" if ImportCommit.objects.filter(pk=job_id).exists() else "gone")
        if job.state in (job.State.DONE, job.State.FAILED):
            return None, job.state
        if job.run_id is not None:
            mark_abandoned_runs()  # a run whose process died is aborted now, whatever killed it
            run = ImportRun.objects.get(pk=job.run_id)
            if run.status in DONE_RUNS:  # imported already, by an attempt that died after its COMMIT
                _finish(job, job.State.DONE, run=run)
                _reroute_if_lost(run)
                return None, "done"
            if run.status == ImportRun.Status.RUNNING:
                return None, "busy"  # alive on another worker (given this task again after a timeout)
        if job.attempts >= MAX_ATTEMPTS:
            _finish(job, job.State.FAILED, error="the import was interrupted too many times; nothing was changed")
            return None, "failed"
        job.state, job.attempts, job.started_at, job.run, job.stage = (job.State.RUNNING, job.attempts + 1,
                                                                       timezone.now(), None, "starting")
        job.save(update_fields=["state", "attempts", "started_at", "run", "stage"])
        return job, None


def _finish(job, state, *, run=None, error=""):
    job.state, job.finished_at, job.error, job.stage = state, timezone.now(), error, str(state)
    if run is not None:
        job.run = run
    job.save(update_fields=["state", "finished_at", "error", "stage", "run"])


def _reroute_if_lost(run):
    """An attempt that died after its COMMIT but before its re-route: every open complaint is decided again."""
    if run.status == ImportRun.Status.COMMITTED and "rerouted" not in (run.counts or {}):
        spec_target = (run.spec or {}).get("target")
        if spec_target in REROUTE_TARGETS:
            from .core import reroute_after_import  # the one re-route call; None: every open complaint

            counts, notes = dict(run.counts or {}), []
            reroute_after_import(run, spec_target, counts, notes)
            run.counts = counts
            run.save(update_fields=["counts"])


@shared_task(name="importers.tasks.import_commit")
def import_commit(job_id):
    """Commit the dry run of ImportCommit `job_id` (importers.uploads.upload_commit), once."""
    from .uploads import upload_commit

    job, outcome = _claim(job_id)
    if job is None:
        return outcome
    progress = QueueProgress(job.pk)
    token = _current_commit.set(job.pk)
    try:
        result = upload_commit(run=job.dry_run, user=job.user, progress=progress)
    except ImportFailure as exc:
        _finish(job, job.State.FAILED, error=str(exc))
        return "failed"
    finally:
        _current_commit.reset(token)
    _finish(job, job.State.DONE, run=result.run)
    return "done"


@shared_task(name="importers.tasks.import_commit_sweep")
def import_commit_sweep(older_than_seconds=300):
    """Every five minutes (celery beat): commits still queued, or running with no live import, are queued again
    (their task was lost with the broker, or acknowledged by an attempt that found another one running)."""
    mark_abandoned_runs()
    stale = timezone.now() - datetime.timedelta(seconds=older_than_seconds)
    jobs = ImportCommit.objects.filter(state__in=[ImportCommit.State.QUEUED, ImportCommit.State.RUNNING],
                                       created_at__lt=stale).exclude(run__status=ImportRun.Status.RUNNING)
    ids = list(jobs.values_list("pk", flat=True))
    for pk in ids:
        import_commit.delay(pk)
    return len(ids)
