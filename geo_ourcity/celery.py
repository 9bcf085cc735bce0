"""The task queue's Celery app: `celery -A geo_ourcity worker` and `celery -A geo_ourcity beat` (docs/deployment.md).

Its configuration is the CELERY_* block of the settings (broker and results on REDIS_URL's Redis). Tasks live in
each app's tasks.py and are found by autodiscovery: the project package names no app's tasks.
"""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geo_ourcity.settings")

app = Celery("geo_ourcity")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
