"""Load the Moscow demo city through the import pipeline (the same path data staff use), then demo users."""
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from importers.core import run_import
from importers.errors import ImportFailure

DATA = Path(settings.BASE_DIR) / "data"


def demo_steps(manifest=DATA / "demo.txt"):
    steps = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            file, spec = line.split()
            steps.append((DATA / file, DATA / spec))
    return steps


class Command(BaseCommand):
    help = "Load the Moscow demo city (data/demo.txt) through import_dataset; a second run changes nothing."

    def handle(self, *args, **options):
        for file, spec in demo_steps():
            try:
                result = run_import(file, spec, commit=True, actor="load_demo")
            except ImportFailure as exc:
                raise CommandError(f"{file.name} with {spec.name}: {exc}") from None
            c = result.counts
            self.stdout.write(f"{spec.stem:<32} {result.run.status:<10} created {c['created']:>4}  updated "
                              f"{c['updated']:>4}  unchanged {c['unchanged']:>4}  retired {c['retired']:>3}  "
                              f"rejected {c['rejected']:>3}")
        from geo_ourcity.demo import ensure_demo_users

        for login, password, role in ensure_demo_users():
            self.stdout.write(f"demo login: {login} / {password} ({role})")
