"""The residents' pages' own tables: the map's per-cell counts are kept by triggers (migration 0001); the
statistics' expensive figures are computed on a schedule (web.tasks.statistics_refresh) into StatisticsSnapshot."""
from django.db import models


class StatisticsSnapshot(models.Model):
    """The figures of the public statistics page that take a pass over every complaint (answers on time, the
    median time to answer, open and overdue, the departments' counts), as the scheduler last computed them."""

    computed_at = models.DateTimeField(db_index=True)
    seconds = models.FloatField()
    figures = models.JSONField()

    class Meta:
        ordering = ["-computed_at"]
        get_latest_by = "computed_at"
