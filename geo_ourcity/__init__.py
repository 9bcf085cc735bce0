# The Celery app is loaded with Django, so that `@shared_task`s and `transaction.on_commit(task.delay)` use it.
from .celery import app as celery_app

__all__ = ("celery_app",)
