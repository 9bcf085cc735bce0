"""The staff workspace's work on the task queue: big CSV exports (staff.export). Idempotent: a job is made once
(its state, under its row lock); a task run again after a killed worker makes it again from the start."""
import datetime

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone


@shared_task(name="staff.tasks.export_make")
def export_make(job_id):
    from .export import export_write
    from .models import ExportJob

    with transaction.atomic():
        job = ExportJob.objects.select_for_update(skip_locked=True).select_related("user").filter(pk=job_id).first()
        if job is None or job.state != ExportJob.State.QUEUED:
            return "busy" if job is None and ExportJob.objects.filter(pk=job_id).exists() else "not due"
        if not job.user.is_active:
            job.state, job.error, job.finished_at = ExportJob.State.FAILED, "the user is no longer active", \
                timezone.now()
        else:
            job.file, job.rows = export_write(job)
            job.state, job.finished_at = ExportJob.State.DONE, timezone.now()
        job.save(update_fields=["state", "error", "finished_at", "file", "rows"])
        return str(job.state)


@shared_task(name="staff.tasks.export_expire")
def export_expire():
    """Every hour (celery beat): exports older than EXPORT_KEEP_HOURS are deleted from the storage."""
    from django.core.files.storage import default_storage

    from .models import ExportJob

    old = timezone.now() - datetime.timedelta(hours=settings.EXPORT_KEEP_HOURS)
    expired = 0
    for job in ExportJob.objects.filter(created_at__lt=old).exclude(state=ExportJob.State.EXPIRED):
        if job.file and default_storage.exists(job.file):
            default_storage.delete(job.file)
        ExportJob.objects.filter(pk=job.pk).update(state=ExportJob.State.EXPIRED, file="")
        expired += 1
    return expired


# --- the registry corrected by hand-ons (staff.corrections) ---

@shared_task(name="staff.tasks.corrections_find")
def corrections_find():
    """On beat (REGISTRY_CORRECTION_EVERY) and on demand (/staff/registry/): fill the data-staff queue; queue again
    an accepted correction whose import task was lost."""
    from .corrections import corrections_find as find, corrections_requeue

    counts = find()
    counts["requeued"] = corrections_requeue()
    return counts


@shared_task(name="staff.tasks.correction_apply")
def correction_apply_task(correction_id):
    """The import of an accepted correction (idempotent: staff.corrections.correction_apply)."""
    from .corrections import correction_apply

    return correction_apply(correction_id)
