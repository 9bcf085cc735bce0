"""Recount the residents' map's per-cell complaint counts from the complaints table.

The triggers of web/migrations/0001_complaint_cells.py keep the counts exact; this is the repair tool (after
restoring a dump without them, or loading complaints with the triggers disabled).
"""
import time

from django.core.management.base import BaseCommand
from django.db import connection, transaction


class Command(BaseCommand):
    help = __doc__.split("\n\n")[0]

    def handle(self, *args, **options):
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SELECT web_complaintcell_rebuild()")
            cur.execute("SELECT count(*), coalesce(sum(n), 0) FROM web_complaintcell WHERE level = 11")
            cells, complaints = cur.fetchone()
        self.stdout.write(f"map counts rebuilt: {complaints} complaints in {cells} cells at the coarsest level, "
                          f"{time.perf_counter() - started:.1f} s")
