"""The residents' pages' work on the task queue: the public statistics, computed on a schedule (celery beat) so
that the page never makes the pass over every complaint itself (web.selectors.complaint_stats)."""
from celery import shared_task


@shared_task(name="web.tasks.statistics_refresh")
def statistics_refresh():
    from .selectors import statistics_refresh as refresh

    snapshot = refresh()
    return {"computed_at": snapshot.computed_at.isoformat(), "seconds": snapshot.seconds}
