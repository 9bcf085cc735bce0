import sys

from django.core.management.base import BaseCommand, CommandError

from importers.core import Progress, run_import
from importers.errors import ImportFailure


class TqdmProgress(Progress):
    """A progress bar on the terminal (stderr), only when stderr is a terminal."""

    def __init__(self):
        from tqdm import tqdm

        self._tqdm = tqdm
        self.bar = None
        self.enabled = sys.stderr.isatty()

    def start(self, total):
        if self.enabled:
            self.bar = self._tqdm(total=total, unit="rows", unit_scale=True, desc="staging", file=sys.stderr)

    def step(self, name):
        if self.bar is not None:
            self.bar.set_description(name)
        elif self.enabled:
            print(f"{name}...", file=sys.stderr, flush=True)

    def advance(self, n):
        if self.bar is not None:
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Command(BaseCommand):
    # Data staff read this command's output; system-check warnings belong to runserver/migrate, not here.
    requires_system_checks = []
    help = ("Import a dataset (GeoJSON, GeoPackage, zipped Shapefile, KML, CSV with lon/lat, data.mos.ru JSON) "
            "into the registry as the mapping spec says. A dry run unless --commit.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="the dataset file")
        parser.add_argument("--spec", required=True, help="the mapping spec (YAML or JSON); see docs/importing.md")
        parser.add_argument("--commit", action="store_true", help="apply the changes (default: dry run)")
        parser.add_argument("--quiet", action="store_true", help="print only the summary line")

    def handle(self, *args, **options):
        try:
            result = run_import(options["file"], options["spec"], commit=options["commit"],
                                progress=None if options["quiet"] else TqdmProgress())
        except ImportFailure as exc:
            raise CommandError(str(exc)) from None
        if options["quiet"]:
            c = result.counts
            self.stdout.write(f"run #{result.run.pk} {result.run.status}: created {c['created']}, updated "
                              f"{c['updated']}, unchanged {c['unchanged']}, retired {c['retired']}, "
                              f"rejected {c['rejected']}")
        else:
            self.stdout.write(result.report_text, ending="")
