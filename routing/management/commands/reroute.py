"""Re-route the open complaints whose department the current registry and routing table no longer agree with."""
import shutil
from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from importers.core import run_import
from importers.errors import ImportFailure
from routing.services import complaints_reroute


class Command(BaseCommand):
    help = ("Decide every open complaint again and move those whose department changed (one set-based pass). "
            "With --dry-run, print what would move and change nothing; with --dry-run --import FILE --spec SPEC, "
            "what that import would move.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="print what would move; change nothing")
        parser.add_argument("--complaint", type=int, action="append", dest="complaints", metavar="ID",
                            help="only this complaint (may be repeated)")
        parser.add_argument("--import", dest="import_file", metavar="FILE",
                            help="with --dry-run: apply this dataset in a transaction that is rolled back")
        parser.add_argument("--spec", help="the mapping spec for --import")
        parser.add_argument("--limit", type=int, default=50, help="moves to list one by one (default 50)")

    def handle(self, *args, **options):
        if options["import_file"] and not (options["dry_run"] and options["spec"]):
            raise CommandError("--import needs --dry-run and --spec (to apply an import, use import_dataset --commit)")
        if options["import_file"]:
            result = self._preview_import(options)
        else:
            result = complaints_reroute(dry_run=options["dry_run"], complaint_ids=options["complaints"],
                                        reason="manage.py reroute")
        verb = "would move" if result.dry_run else "moved"
        self.stdout.write(f"{result.considered} open complaints decided again in {result.seconds} s; "
                          f"{result.moved} {verb}.")
        if result.refreshed:
            self.stdout.write(f"{result.refreshed} keep their department; their decisions found other facilities "
                              f"and {'would be' if result.dry_run else 'were'} refreshed.")
        if result.moves:
            for (source, target), n in Counter((m.from_department, m.to_department) for m in result.moves).most_common():
                self.stdout.write(f"  {n:>6}  {source} -> {target}")
            for m in result.moves[:options["limit"]]:
                self.stdout.write(f"  {m.tracking_code}: {m.from_department} -> {m.to_department} ({m.rule}): "
                                  f"{m.explanation_ru}")
            if len(result.moves) > options["limit"]:
                self.stdout.write(f"  ... and {len(result.moves) - options['limit']} more")
        if result.dry_run:
            self.stdout.write("Dry run: nothing was changed.")

    def _preview_import(self, options):
        with transaction.atomic():
            try:
                run = run_import(options["import_file"], options["spec"], commit=True, reroute=False,
                                 actor="reroute --dry-run").run
            except ImportFailure as exc:
                raise CommandError(str(exc)) from None
            result = complaints_reroute(dry_run=True, complaint_ids=options["complaints"])
            transaction.set_rollback(True)
        # The run is rolled back with everything else; so is its number, which a real run will reuse.
        if run.report_path:
            shutil.rmtree(Path(run.report_path).parent, ignore_errors=True)
        self.stdout.write(f"(as if {options['import_file']} were imported: nothing of it was kept)")
        return result
