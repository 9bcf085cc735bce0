"""The routing app's work on the task queue (geo_ourcity/celery.py): the category-suggestion model, learned
again on a schedule (settings.SUGGEST_TRAIN_EVERY_S; CELERY_BEAT_SCHEDULE)."""
import logging

from celery import shared_task

from .suggest_model import NotEnoughHistory, model_train

log = logging.getLogger(__name__)


@shared_task(name="routing.tasks.suggestion_model_train")
def suggestion_model_train():
    """Train and store the next model version; with too little history, say so and store nothing."""
    try:
        row = model_train()
    except NotEnoughHistory as exc:
        log.info("suggestion model not trained: %s", exc)
        return {"version": None, "reason": str(exc)}
    return {"version": row.version, "samples": row.samples, "seconds": row.train_seconds}
