"""Re-route the open complaints whose department the current registry and routing table no longer agree with.

It lives in complaints, which applies the re-route (routing only plans it). What an import would move runs an
import, and so is asked of importers: `manage.py reroute_preview FILE --spec SPEC`."""
from django.core.management.base import BaseCommand

from complaints.services import complaints_reroute


class Command(BaseCommand):
    help = ("Decide every open complaint again and move those whose department changed (one set-based pass). "
            "With --dry-run, print what would move and change nothing. (What an import would move: "
            "manage.py reroute_preview FILE --spec SPEC.)")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="print what would move; change nothing")
        parser.add_argument("--complaint", type=int, action="append", dest="complaints", metavar="ID",
                            help="only this complaint (may be repeated)")
        parser.add_argument("--limit", type=int, default=50, help="moves to list one by one (default 50)")

    def handle(self, *args, **options):
        result = complaints_reroute(dry_run=options["dry_run"], complaint_ids=options["complaints"],
                                    reason="manage.py reroute")
        for line in result.report(limit=options["limit"]):
            self.stdout.write(line)
