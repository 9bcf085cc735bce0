"""The registry's scheduled work (celery beat, geo_ourcity.settings.CELERY_BEAT_SCHEDULE)."""
from celery import shared_task


@shared_task(name="facilities.tasks.search_sweep", ignore_result=True)
def search_sweep():
    """Every few minutes: any active facilities generation a crash left without its search index and vocabulary
    (the import makes its own just after its commit: facilities.search.generation_make_searchable)."""
    from .search import generations_make_searchable

    return generations_make_searchable()
