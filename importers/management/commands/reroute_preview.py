"""What an import would move: apply it in a transaction that is rolled back and ask for a dry-run re-route."""
import shutil
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from complaints.services import complaints_reroute  # the one re-route service
from importers.core import run_import
from importers.errors import ImportFailure


class Command(BaseCommand):
    help = ("Show which open complaints an import would move to another department: the dataset is applied in a "
            "transaction that is rolled back, then the re-route runs as a dry run. Nothing is kept.")

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="the dataset")
        parser.add_argument("--spec", required=True, help="its mapping spec")
        parser.add_argument("--complaint", type=int, action="append", dest="complaints", metavar="ID",
                            help="only this complaint (may be repeated)")
        parser.add_argument("--limit", type=int, default=50, help="moves to list one by one (default 50)")

    def handle(self, *args, **options):
        with transaction.atomic():
            try:
                run = run_import(options["file"], options["spec"], commit=True, reroute=False,
                                 actor="reroute_preview").run
            except ImportFailure as exc:
                raise CommandError(str(exc)) from None
            result = complaints_reroute(dry_run=True, complaint_ids=options["complaints"])
            transaction.set_rollback(True)
        # The run is rolled back with everything else; so is its number, which a real run will reuse.
        if run.report_path:
            shutil.rmtree(Path(run.report_path).parent, ignore_errors=True)
        self.stdout.write(f"(as if {options['file']} were imported: nothing of it was kept)")
        for line in result.report(limit=options["limit"]):
            self.stdout.write(line)
